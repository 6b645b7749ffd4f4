// apps/common/history_plot.hpp — a training History drawn as an SVG file: the apps' --plot PATH.
//
// One panel per quantity (loss first, then each metric, as the History names them), each with the
// training curve and, when there is one, the validation curve (val_<name>), over the epochs. Each
// point carries its exact value as a <title>, which a browser shows on hovering. input_wait is
// left out: it describes the pipeline, not the model.
#pragma once

#include <kiln/callbacks.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln::apps {

namespace history_plot {

constexpr double kPanelWidth = 380, kPanelHeight = 260;
constexpr double kLeft = 56, kRight = 16, kTop = 34, kBottom = 44;  // the plot area's margins in a panel
constexpr const char* kTrainColour = "#1f77b4";
constexpr const char* kValidationColour = "#ff7f0e";

inline std::string number(double value, const char* format = "%.6g") {
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// One panel at horizontal offset `left`: axes, ticks and the curves of `name` and val_<name>.
inline std::string panel(const History& history, const std::string& name, double left) {
  const std::vector<double>& train = history.history.at(name);
  const auto validation_entry = history.history.find("val_" + name);
  const std::vector<double>* validation = validation_entry == history.history.end() ? nullptr : &validation_entry->second;

  // The value range over both curves' finite points, widened a little so no point sits on the frame.
  double low = INFINITY, high = -INFINITY;
  for (const std::vector<double>* curve : {&train, validation}) {
    if (!curve) continue;
    for (double v : *curve) {
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
  }
  if (!std::isfinite(low)) low = 0.0, high = 1.0;
  if (high - low < 1e-12) low -= 0.5, high += 0.5;
  const double margin = 0.05 * (high - low);
  low -= margin;
  high += margin;

  const double width = kPanelWidth - kLeft - kRight, height = kPanelHeight - kTop - kBottom;
  const size_t epochs = train.size();
  auto x_of = [&](size_t i) { return left + kLeft + (epochs > 1 ? width * static_cast<double>(i) / static_cast<double>(epochs - 1) : width / 2); };
  auto y_of = [&](double v) { return kTop + height * (high - v) / (high - low); };
  auto epoch_label = [&](size_t i) { return std::to_string(i < history.epoch.size() ? history.epoch[i] + 1 : static_cast<int>(i) + 1); };

  std::string svg = "<g class=\"panel\" data-metric=\"" + name + "\">\n";
  svg += "<text x=\"" + number(left + kLeft + width / 2) + "\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">" + name + "</text>\n";
  svg += "<rect x=\"" + number(left + kLeft) + "\" y=\"" + number(kTop) + "\" width=\"" + number(width) + "\" height=\"" + number(height) +
         "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int tick = 0; tick <= 4; ++tick) {  // five values up the side
    const double v = low + (high - low) * tick / 4.0, y = y_of(v);
    svg += "<line x1=\"" + number(left + kLeft - 4) + "\" y1=\"" + number(y) + "\" x2=\"" + number(left + kLeft) + "\" y2=\"" + number(y) +
           "\" stroke=\"#888\"/><text x=\"" + number(left + kLeft - 6) + "\" y=\"" + number(y + 4) +
           "\" text-anchor=\"end\" font-size=\"11\">" + number(v, "%.3g") + "</text>\n";
  }
  const size_t every = std::max<size_t>(1, (epochs + 9) / 10);  // at most about ten epoch labels
  for (size_t i = 0; i < epochs; i += every) {
    svg += "<text x=\"" + number(x_of(i)) + "\" y=\"" + number(kTop + height + 16) + "\" text-anchor=\"middle\" font-size=\"11\">" +
           epoch_label(i) + "</text>\n";
  }
  svg += "<text x=\"" + number(left + kLeft + width / 2) + "\" y=\"" + number(kPanelHeight - 8) +
         "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";

  auto curve = [&](const std::vector<double>& values, const std::string& label, const char* colour, const char* dash) {
    std::string points, marks;
    for (size_t i = 0; i < values.size() && i < epochs; ++i) {
      if (!std::isfinite(values[i])) continue;  // a diverged epoch has no point
      const std::string x = number(x_of(i)), y = number(y_of(values[i]));
      points += (points.empty() ? "" : " ") + x + "," + y;
      marks += "<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"2.5\" fill=\"" + colour + "\"><title>" + label + ", epoch " +
               epoch_label(i) + ": " + number(values[i], "%.17g") + "</title></circle>\n";
    }
    return "<polyline class=\"curve\" data-curve=\"" + label + "\" points=\"" + points + "\" fill=\"none\" stroke=\"" + colour +
           "\" stroke-width=\"2\"" + dash + "/>\n" + marks;
  };
  svg += curve(train, name, kTrainColour, "");
  if (validation) svg += curve(*validation, "val_" + name, kValidationColour, " stroke-dasharray=\"6 3\"");

  // The legend, in the right-hand corner the curves end away from: the bottom one when the last
  // training value is in the upper half (accuracy), else the top one (loss).
  const double legend_x = left + kLeft + width - 110;
  const bool ends_high = !train.empty() && std::isfinite(train.back()) && train.back() > (low + high) / 2;
  const double legend_y = ends_high ? kTop + height - 40 : kTop;
  svg += "<line x1=\"" + number(legend_x) + "\" y1=\"" + number(legend_y + 14) + "\" x2=\"" + number(legend_x + 20) + "\" y2=\"" +
         number(legend_y + 14) + "\" stroke=\"" + kTrainColour + "\" stroke-width=\"2\"/><text x=\"" + number(legend_x + 26) + "\" y=\"" +
         number(legend_y + 18) + "\" font-size=\"11\">training</text>\n";
  if (validation) {
    svg += "<line x1=\"" + number(legend_x) + "\" y1=\"" + number(legend_y + 30) + "\" x2=\"" + number(legend_x + 20) + "\" y2=\"" +
           number(legend_y + 30) + "\" stroke=\"" + kValidationColour + "\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/><text x=\"" +
           number(legend_x + 26) + "\" y=\"" + number(legend_y + 34) + "\" font-size=\"11\">validation</text>\n";
  }
  return svg + "</g>\n";
}

}  // namespace history_plot

// The SVG document: loss first, then the other quantities in name order.
inline std::string history_svg(const History& history) {
  std::vector<std::string> names;
  if (history.history.contains("loss")) names.push_back("loss");
  for (const auto& [name, values] : history.history) {
    if (name != "loss" && name != "input_wait" && !name.starts_with("val_")) names.push_back(name);
  }
  const double width = history_plot::kPanelWidth * static_cast<double>(std::max<size_t>(1, names.size()));
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    history_plot::number(width) + "\" height=\"" + history_plot::number(history_plot::kPanelHeight) +
                    "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t i = 0; i < names.size(); ++i) svg += history_plot::panel(history, names[i], history_plot::kPanelWidth * static_cast<double>(i));
  return svg + "</svg>\n";
}

inline void write_history_svg(const std::string& path, const History& history) { io::write_file_atomically(path, history_svg(history)); }

}  // namespace kiln::apps
