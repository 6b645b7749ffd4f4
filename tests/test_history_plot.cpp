// The apps' --plot (apps/common/history_plot.hpp): the SVG is well-formed XML, has a panel per
// quantity, and every curve's points are the History's values: each point's title holds the value,
// and the heights are one linear map of the values, larger values higher up.
#include "../apps/common/history_plot.hpp"

#include "temporary_directory.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

using namespace kiln;

namespace {

struct Point {
  double y = 0, value = 0;
};

// The points of the curve labelled `label`: heights from the polyline, values from the titles.
std::vector<Point> curve_points(const std::string& svg, const std::string& label) {
  const std::regex polyline("data-curve=\"" + label + "\" points=\"([^\"]*)\"");
  std::smatch found;
  REQUIRE(std::regex_search(svg, found, polyline));
  std::vector<Point> points;
  const std::string coordinates = found[1];
  const std::regex pair("[-0-9.e]+,([-0-9.e]+)");
  for (auto it = std::sregex_iterator(coordinates.begin(), coordinates.end(), pair); it != std::sregex_iterator(); ++it) {
    points.push_back({std::stod((*it)[1]), 0.0});
  }
  const std::regex title("<title>" + label + ", epoch [0-9]+: ([^<]+)</title>");
  size_t i = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), title); it != std::sregex_iterator(); ++it, ++i) {
    REQUIRE(i < points.size());
    points[i].value = std::stod((*it)[1]);
  }
  CHECK(i == points.size());
  return points;
}

void check_curve(const std::string& svg, const std::string& label, const std::vector<double>& values) {
  INFO(label);
  const std::vector<Point> points = curve_points(svg, label);
  REQUIRE(points.size() == values.size());
  for (size_t i = 0; i < values.size(); ++i) CHECK(points[i].value == values[i]);  // %.17g round-trips a double
  // y = a - b v with b > 0: the same slope between every point and the first.
  const double slope = (points[1].y - points[0].y) / (values[1] - values[0]);
  CHECK(slope < 0.0);
  for (size_t i = 2; i < values.size(); ++i) {
    CHECK((points[i].y - points[0].y) / (values[i] - values[0]) == doctest::Approx(slope).epsilon(1e-4));
  }
}

}  // namespace

TEST_CASE("--plot: a well-formed SVG whose curves are the History's values") {
  History history;
  history.epoch = {0, 1, 2, 3};
  history.history["loss"] = {0.61, 0.43, 0.385, 0.352};
  history.history["val_loss"] = {0.47, 0.42, 0.401, 0.399};
  history.history["accuracy"] = {0.78, 0.845, 0.861, 0.872};
  history.history["val_accuracy"] = {0.83, 0.848, 0.853, 0.859};
  history.history["input_wait"] = {0.1, 0.01, 0.01, 0.02};
  const std::string svg = apps::history_svg(history);

  check_curve(svg, "loss", history.history["loss"]);
  check_curve(svg, "val_loss", history.history["val_loss"]);
  check_curve(svg, "accuracy", history.history["accuracy"]);
  check_curve(svg, "val_accuracy", history.history["val_accuracy"]);
  CHECK(svg.find("input_wait") == std::string::npos);
  // Loss is the first panel.
  CHECK(svg.find("data-metric=\"loss\"") < svg.find("data-metric=\"accuracy\""));

  // Well-formed, as an XML parser sees it (when python3 is there to parse it).
  if (std::system("/usr/bin/python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped the XML parse: no python3");
    return;
  }
  kiln::testing::TemporaryDirectory directory;
  const std::string path = directory.file("history.svg");
  apps::write_history_svg(path, history);
  const std::string parse = "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
                            "root = E.parse(sys.argv[1]).getroot(); "
                            "sys.exit(0 if root.tag.endswith('svg') and len(root.findall('.//{http://www.w3.org/2000/svg}polyline')) == 4 else 1)\" '" +
                            path + "'";
  CHECK(std::system(parse.c_str()) == 0);
}

TEST_CASE("--plot: a diverged epoch leaves a gap, and one epoch or a flat curve still draws") {
  History history;
  history.epoch = {0, 1, 2};
  history.history["loss"] = {0.5, NAN, 0.25};
  const std::string svg = apps::history_svg(history);
  const std::vector<Point> points = curve_points(svg, "loss");
  REQUIRE(points.size() == 2);
  CHECK(points[0].value == 0.5);
  CHECK(points[1].value == 0.25);
  CHECK(svg.find("nan") == std::string::npos);

  History flat;
  flat.epoch = {4};
  flat.history["loss"] = {0.3};
  const std::string one = apps::history_svg(flat);
  CHECK(curve_points(one, "loss").size() == 1);
  CHECK(one.find("nan") == std::string::npos);
  CHECK(one.find("inf") == std::string::npos);
  CHECK(one.find("<title>loss, epoch 5: 0.29999999999999999</title>") != std::string::npos);  // epochs count from 1
}
