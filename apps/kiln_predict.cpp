// kiln-predict — runs a saved model (.kiln, from model.save or an app's --save) over labelled
// data and prints its accuracy and confusion matrix.
//
// --data is either a folder with the four IDX files (its t10k test pair is used, read as
// kiln-mnist reads it) or a folder of images with one subfolder per class (read as kiln-images
// reads it, at the size and colour mode the model's input shape says).
// Errors print one line and exit non-zero: 2 for bad flags or missing data, 1 for anything else.
#include "common/arguments.hpp"
#include "common/idx_data.hpp"
#include "common/run_app.hpp"

#include <kiln/kiln.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char* kProgram = "kiln-predict";

// Counts of (true class, predicted class) pairs, and the accuracy they give.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::vector<std::string> class_names)
      : names_(std::move(class_names)), counts_(names_.size() * names_.size(), 0) {}

  // probabilities: [batch, classes]; labels: [batch] class indices.
  void add(const kiln::Tensor& probabilities, const kiln::Tensor& labels) {
    const int64_t classes = static_cast<int64_t>(names_.size());
    if (probabilities.shape().rank() != 2 || probabilities.shape()[1] != classes) {
      throw kiln::ShapeError("the model gives outputs of shape " + probabilities.shape().str() + ", but the data has " +
                             std::to_string(classes) + " classes");
    }
    for (int64_t row = 0; row < probabilities.rows(); ++row) {
      const float* scores = probabilities.data() + row * classes;
      const auto predicted = std::max_element(scores, scores + classes) - scores;
      const auto label = static_cast<int64_t>(labels.data()[row]);
      if (label < 0 || label >= classes) throw kiln::ValueError("label " + std::to_string(label) + " is not a class");
      ++counts_[static_cast<size_t>(label * classes + predicted)];
    }
  }

  void print() const {
    const size_t classes = names_.size();
    int64_t correct = 0, total = 0;
    for (size_t label = 0; label < classes; ++label) {
      for (size_t predicted = 0; predicted < classes; ++predicted) {
        total += counts_[label * classes + predicted];
        if (label == predicted) correct += counts_[label * classes + predicted];
      }
    }
    std::printf("Accuracy: %.4f (%lld of %lld)\n", total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0,
                static_cast<long long>(correct), static_cast<long long>(total));
    size_t width = 6;
    for (const std::string& name : names_) width = std::max(width, name.size() + 1);
    std::printf("Confusion matrix (rows: true class, columns: predicted class):\n%*s", static_cast<int>(width), "");
    for (const std::string& name : names_) std::printf("%*s", static_cast<int>(width), name.c_str());
    std::printf("\n");
    for (size_t label = 0; label < classes; ++label) {
      std::printf("%*s", static_cast<int>(width), names_[label].c_str());
      for (size_t predicted = 0; predicted < classes; ++predicted) {
        std::printf("%*lld", static_cast<int>(width), static_cast<long long>(counts_[label * classes + predicted]));
      }
      std::printf("\n");
    }
  }

 private:
  std::vector<std::string> names_;
  std::vector<int64_t> counts_;
};

int run(int argc, char** argv) {
  using namespace kiln;
  apps::Arguments arguments(kProgram,
                            "Runs a saved model (.kiln) over labelled data and prints its accuracy and confusion matrix.");
  arguments.add_option("model", "PATH", "", "the model file, as model.save or an app's --save m.kiln writes it (required)");
  arguments.add_option("data", "DIR", "",
                       "a folder with the four IDX files (the t10k pair is used) or a folder with one subfolder of "
                       "images per class (required)");
  arguments.add_option("batch-size", "N", "256", "samples per forward pass");
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed

  const std::string model_path = arguments.text("model"), data_dir = arguments.text("data");
  if (model_path.empty()) throw apps::ArgumentError("--model PATH is required: a .kiln file");
  if (data_dir.empty()) throw apps::ArgumentError("--data DIR is required: IDX files or a folder of class folders");
  if (!std::filesystem::is_directory(data_dir)) {
    std::cerr << kProgram << ": --data: no such folder: " << data_dir << "\n";
    return 2;
  }
  const int64_t batch_size = arguments.integer_in("batch-size", 1, apps::kMaxBatchSize);

  Sequential model = load_model(model_path);
  std::cout << "Model " << model.name() << " from " << model_path << ": " << model.layer_count()
            << " layers, inputs of shape " << model.input_shape().str() << ", trained " << model.epochs_completed()
            << " epochs\n";
  const int64_t classes = model.output_shape().rank() == 1 ? model.output_shape()[0] : 0;
  if (classes < 2) throw ValueError("the model's output " + model.output_shape().str() + " is not one score per class");

  if (apps::holds_idx_files(data_dir)) {
    const datasets::TrainTest data = datasets::load_idx(data_dir);
    std::vector<std::string> names;
    for (int64_t label = 0; label < classes; ++label) names.push_back(std::to_string(label));
    ConfusionMatrix matrix(names);
    matrix.add(model.predict(data.test.x, {.batch_size = batch_size}), data.test.y);
    std::cout << "Data: " << data.test.x.rows() << " test images from " << data_dir << "\n";
    matrix.print();
    return 0;
  }

  // A folder of class folders, decoded at the model's input size: [height, width, channels].
  const Shape& input = model.input_shape();
  if (input.rank() != 3 || input[2] < 1 || input[2] > 4 || input[2] == 2) {
    throw ValueError("the model takes inputs of shape " + input.str() +
                     ", not images (height, width and 1, 3 or 4 channels)");
  }
  const image::ImageDirectoryOptions options{
      .color_mode = input[2] == 1 ? image::ColorMode::Grayscale
                                  : (input[2] == 3 ? image::ColorMode::RGB : image::ColorMode::RGBA),
      .batch_size = batch_size,
      .image_size = {input[0], input[1]},
      .shuffle = false,
  };
  const image::ImageDatasets found = image::image_dataset_from_directory(data_dir, options);
  if (static_cast<int64_t>(found.class_names.size()) != classes) {
    throw ValueError(data_dir + " has " + std::to_string(found.class_names.size()) + " classes, but the model has " +
                     std::to_string(classes) + " outputs");
  }
  ConfusionMatrix matrix(found.class_names);
  for (const LabeledData& batch : found.dataset) matrix.add(model.forward(batch.x), batch.y);
  matrix.print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
