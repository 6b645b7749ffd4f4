// kiln-export-images — writes an IDX data set (Fashion-MNIST by default) as folders of image
// files, one folder per class, so every user has a real image folder to try
// image_dataset_from_directory and kiln-images on:
//   OUT/train/<class_name>/<index>.png   (the training images; index is the image's IDX position)
//   OUT/test/<class_name>/<index>.png    (the test images)
// Indices are zero-padded, so a folder listed alphanumerically is in IDX order. Existing train/ or
// test/ folders under OUT are never overwritten. Errors print one line and exit non-zero: 2 for
// bad flags or missing data, 1 for anything else.
#include "common/arguments.hpp"
#include "common/idx_data.hpp"
#include "common/run_app.hpp"

#include <kiln/kiln.hpp>

#include <limits>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

namespace {

constexpr const char* kProgram = "kiln-export-images";
namespace fs = std::filesystem;

// Keras's Fashion-MNIST labels (keras.datasets.fashion_mnist), as folder names: "T-shirt/top"
// cannot be one, so its "/" becomes "_".
const std::vector<std::string> kFashionMnistClassNames = {"T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// --class-names: "fashion-mnist", "digits" (0 to 9, for MNIST), or a comma-separated list.
std::vector<std::string> class_names_from_flag(const std::string& text) {
  if (text == "fashion-mnist") return kFashionMnistClassNames;
  std::vector<std::string> names;
  if (text == "digits") {
    for (int digit = 0; digit < 10; ++digit) names.push_back(std::to_string(digit));
    return names;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    names.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  for (const std::string& name : names) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || name.starts_with(".")) {
      throw kiln::apps::ArgumentError("--class-names: '" + name + "' cannot be a folder name (no '/', not empty, not starting with '.')");
    }
  }
  return names;
}

// Writes `count` images of one split as OUT/<split>/<class>/<index>.<format>; returns how many.
int64_t export_split(const kiln::datasets::IdxArray& images, const kiln::datasets::IdxArray& labels,
                     const std::vector<std::string>& class_names, const fs::path& out, int64_t limit,
                     const std::string& format) {
  if (images.shape.rank() != 3 || labels.shape.rank() != 1 || images.shape[0] != labels.shape[0]) {
    throw kiln::FileError("the IDX images " + images.shape.str() + " and labels " + labels.shape.str() +
                          " do not pair up as [n, rows, cols] and [n]");
  }
  const int64_t count = limit > 0 ? std::min(limit, images.shape[0]) : images.shape[0];
  const int64_t height = images.shape[1], width = images.shape[2];
  const int digits = static_cast<int>(std::to_string(std::max<int64_t>(images.shape[0] - 1, 0)).size());
  for (const std::string& name : class_names) fs::create_directories(out / name);
  kiln::Tensor picture(kiln::Shape{height, width, 1});
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t label = labels.bytes[static_cast<size_t>(i)];
    if (label >= class_names.size()) {
      throw kiln::ValueError("image " + std::to_string(i) + " has label " + std::to_string(label) + " but there are only " +
                             std::to_string(class_names.size()) + " class names (see --class-names)");
    }
    const uint8_t* pixels = images.bytes.data() + i * height * width;
    for (int64_t p = 0; p < height * width; ++p) picture[p] = pixels[p];
    std::string index = std::to_string(i);
    index.insert(0, static_cast<size_t>(digits) - std::min(index.size(), static_cast<size_t>(digits)), '0');
    kiln::image::save_image((out / class_names[label] / (index + "." + format)).string(), picture);
  }
  return count;
}

int run(int argc, char** argv) {
  using namespace kiln;
  apps::Arguments arguments(kProgram,
                            "Writes an IDX data set (Fashion-MNIST by default) as image files in one folder per class:\n"
                            "OUT/train/<class_name>/<index>.png and OUT/test/<class_name>/<index>.png.");
  apps::add_idx_data_option(arguments);
  arguments.add_option("out", "DIR", "", "where to write train/ and test/ (required; they must not exist yet)");
  arguments.add_option("class-names", "NAMES", "fashion-mnist",
                       "folder names for labels 0, 1, ...: fashion-mnist, digits, or a comma-separated list");
  arguments.add_option("format", "EXT", "png", "png, jpg or bmp");
  arguments.add_option("limit", "N", "all", "write only the first N images of each split");
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed
  const std::string out_dir = arguments.text("out");
  if (out_dir.empty()) throw apps::ArgumentError("--out DIR is required: the folder to write train/ and test/ into");
  const std::string format = arguments.text("format");
  if (format != "png" && format != "jpg" && format != "bmp") throw apps::ArgumentError("--format must be png, jpg or bmp, got '" + format + "'");
  const int64_t limit = arguments.has("limit") ? arguments.integer_in("limit", 1, std::numeric_limits<int64_t>::max()) : 0;
  if (arguments.has("limit") && limit < 1) throw apps::ArgumentError("--limit needs a positive number");
  const std::vector<std::string> class_names = class_names_from_flag(arguments.text("class-names"));

  const std::string data_dir = arguments.text("data");
  if (!apps::idx_data_present(kProgram, data_dir)) return 2;
  struct Split {
    const char* name;
    std::string images, labels;
  };
  const Split splits[] = {
      {"train", datasets::find_idx_file(data_dir, "train-images-idx3-ubyte"), datasets::find_idx_file(data_dir, "train-labels-idx1-ubyte")},
      {"test", datasets::find_idx_file(data_dir, "t10k-images-idx3-ubyte"), datasets::find_idx_file(data_dir, "t10k-labels-idx1-ubyte")}};
  for (const Split& split : splits) {
    const fs::path target = fs::path(out_dir) / split.name;
    if (fs::exists(target)) {
      std::cerr << kProgram << ": " << target.string() << " already exists: remove it, or choose another --out\n";
      return 2;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  int64_t total = 0;
  Shape image_shape;
  for (const Split& split : splits) {
    const datasets::IdxArray images = datasets::read_idx(split.images);
    image_shape = images.shape.without_first_axis();
    const datasets::IdxArray labels = datasets::read_idx(split.labels);
    const fs::path target = fs::path(out_dir) / split.name;
    const int64_t written = export_split(images, labels, class_names, target, limit, format);
    total += written;
    std::cout << "Wrote " << written << " images to " << target.string() << "/ (" << class_names.size() << " classes)\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%lld images in %.1f s, reading the IDX files included\n", static_cast<long long>(total), seconds);
  std::cout << "Train on them with: kiln-images --data " << (fs::path(out_dir) / "train").string() << " --test-data "
            << (fs::path(out_dir) / "test").string() << " --image-size " << image_shape.str()
            << " --color-mode grayscale\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
