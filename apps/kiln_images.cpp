// kiln-images — trains a small network on a folder of images, one subfolder per class, through
// image_dataset_from_directory: files are listed up front, then read, decoded and resized on the
// pipeline's worker threads while a prefetch thread keeps batches ready for training.
//
// Model: Rescaling(1/255), then --model's network (common/models.hpp): by default Flatten, Dense
// 128 relu, Dropout 0.2, Dense <classes> softmax, or Keras's MNIST convnet; Adam; sparse
// categorical cross-entropy. Validation: a seeded share of the folder (--validation-split),
// Keras's split rule; --test-data evaluates another folder at the end. Augmentation (--augment)
// is off by default, as in Keras, and applies to the training batches only. By default the model
// gets all cores but one for its math: decoding needs the other (docs/images.md has the figures).
// --preview PATH draws the first training batch, augmented as training gets it, and exits.
// Errors print one line and exit non-zero: 2 for bad flags or missing data, 1 for anything else.
#include "common/arguments.hpp"
#include "common/models.hpp"
#include "common/batch_preview.hpp"
#include "common/run_app.hpp"
#include "common/training_report.hpp"

#include <kiln/kiln.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <random>

namespace {

constexpr const char* kProgram = "kiln-images";
// A 4096x4096 RGB image is 200 MB as floats: a batch of larger ones would not fit in memory.
constexpr long long kMaxImageSide = 4096;

// "28" is 28x28; "180x240" is 180 high and 240 wide.
kiln::image::ImageSize parse_image_size(const std::string& text) {
  try {
    size_t used = 0;
    const long long height = std::stoll(text, &used);
    long long width = height;
    if (used < text.size()) {
      if (text[used] != 'x' && text[used] != 'X') throw std::invalid_argument("x");
      const std::string rest = text.substr(used + 1);
      size_t used_width = 0;
      width = std::stoll(rest, &used_width);
      if (used_width != rest.size()) throw std::invalid_argument("rest");
    }
    if (height > 0 && width > 0 && height <= kMaxImageSide && width <= kMaxImageSide) return {height, width};
  } catch (const std::exception&) {
  }
  throw kiln::apps::ArgumentError("--image-size needs N or HEIGHTxWIDTH (28, 180x240), each from 1 to " +
                                  std::to_string(kMaxImageSide) + ", got '" + text + "'");
}

struct Augmentations {
  bool flip = false, brightness = false, contrast = false;
  bool any() const { return flip || brightness || contrast; }
};

// --augment: a comma-separated list of flip, brightness, contrast (or none).
Augmentations parse_augmentations(const std::string& text) {
  Augmentations chosen;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string name = text.substr(start, comma - start);
    if (name == "flip") {
      chosen.flip = true;
    } else if (name == "brightness") {
      chosen.brightness = true;
    } else if (name == "contrast") {
      chosen.contrast = true;
    } else if (name != "none") {
      throw kiln::apps::ArgumentError("--augment takes a list of flip, brightness, contrast (or none), got '" + name + "'");
    }
    start = comma + 1;
  }
  return chosen;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text;
}

// --preview PATH: the path must name a PNG in a folder that can be written, checked before any
// image is read.
void check_preview_path(const std::string& path) {
  std::string extension = path.size() >= 4 ? path.substr(path.size() - 4) : "";
  for (char& character : extension) character = static_cast<char>(std::tolower(static_cast<unsigned char>(character)));
  if (extension != ".png") throw kiln::apps::ArgumentError("--preview writes a PNG: the path must end in .png, got '" + path + "'");
  kiln::io::check_can_write(path, "--preview");
}

// The first batch of the first epoch, which is what fit's first step gets from the same dataset,
// drawn as a grid captioned with class names and written to `path`.
void write_preview(const std::string& path, const kiln::data::Dataset<kiln::LabeledData>& train,
                   const std::vector<std::string>& class_names) {
  kiln::data::Iteration<kiln::LabeledData> first_epoch = train.iterate();
  const std::optional<kiln::LabeledData> batch = first_epoch.next();
  if (!batch) throw kiln::ValueError("--preview: the training subset has no images to draw");
  const kiln::apps::BatchPreview preview = kiln::apps::batch_preview(batch->x, kiln::apps::class_captions(batch->y, class_names));
  kiln::apps::write_batch_preview(path, preview);
  const kiln::apps::BatchPreviewLayout& layout = preview.layout;
  std::cout << "Wrote the first training batch (" << layout.tiles << " of " << batch->x.dim(0) << " images, " << layout.width << "x"
            << layout.height << " pixels) to " << path << "\n";
}

int run(int argc, char** argv) {
  using namespace kiln;
  apps::Arguments arguments(
      kProgram,
      "Trains a small dense network (Rescaling 1/255, Flatten, Dense 128 relu, Dropout 0.2, Dense softmax)\n"
      "on a folder of images with one subfolder per class, as keras.utils.image_dataset_from_directory reads it.");
  arguments.add_option("data", "DIR", "", "the image folder: DIR/<class_name>/<image> (required)");
  arguments.add_option("test-data", "DIR", "", "another folder with the same classes, evaluated after training");
  arguments.add_option("image-size", "N|HxW", "256x256", "size the images are resized to, as Keras's image_size");
  arguments.add_option("color-mode", "MODE", "rgb", "grayscale, rgb or rgba");
  arguments.add_option("interpolation", "METHOD", "bilinear", "bilinear or nearest");
  arguments.add_switch("crop-to-aspect-ratio", "crop the largest centred window of the target shape before resizing");
  apps::add_model_option(arguments);
  arguments.add_option("epochs", "N", "5", "passes over the training images");
  arguments.add_option("batch-size", "N", "32", "images per training step");
  arguments.add_option("learning-rate", "RATE", "0.001", "Adam's learning rate");
  arguments.add_option("validation-split", "SHARE", "0.2", "share of the images held out for validation (0: none)");
  arguments.add_option("seed", "N", "random", "seed for the split, shuffling, weights, dropout and augmentation");
  arguments.add_option("augment", "LIST", "none", "random training augmentations: flip,brightness,contrast");
  arguments.add_switch("skip-corrupt", "skip images that cannot be decoded instead of stopping");
  arguments.add_option("threads", "N", "all cores but one", "threads for the model's math (the rest decode images)");
  apps::add_output_options(arguments);
  apps::add_callback_options(arguments);
  arguments.add_switch("no-prefetch", "prepare each batch only when training asks for it");
  arguments.add_option("preview", "PATH", "",
                       "write the first training batch (after --augment) as a PNG grid captioned with class names, "
                       "then exit without training");
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed

  const std::string data_dir = arguments.text("data");
  if (data_dir.empty()) {
    throw apps::ArgumentError("--data DIR is required: a folder with one subfolder of images per class "
                              "(kiln-export-images --out DIR writes Fashion-MNIST as one)");
  }
  for (const std::string flag : {"data", "test-data"}) {
    const std::string dir = arguments.text(flag);
    if (!dir.empty() && !std::filesystem::is_directory(dir)) {
      std::cerr << kProgram << ": --" << flag << ": no such folder: " << dir << "\n";
      return 2;
    }
  }
  const image::ImageSize image_size = parse_image_size(arguments.text("image-size"));
  const std::string model_name = arguments.text("model");
  apps::check_model_name(model_name);
  const int epochs = static_cast<int>(arguments.integer_in("epochs", 1, apps::kMaxEpochs));
  const int64_t batch_size = arguments.integer_in("batch-size", 1, apps::kMaxBatchSize);
  const auto learning_rate = static_cast<float>(arguments.number("learning-rate"));
  const double validation_split = arguments.number("validation-split");
  const Augmentations augment = parse_augmentations(arguments.text("augment"));
  const std::string preview_path = arguments.text("preview");
  if (!preview_path.empty()) check_preview_path(preview_path);
  apps::check_output_paths(arguments);
  const std::vector<Shared<Callback>> callbacks = apps::requested_callbacks(arguments);
  // Decoding images takes more CPU than this small model's training (docs/images.md has the
  // figures), so by default one core is left to the pipeline's threads.
  set_num_threads(arguments.has("threads") ? static_cast<int>(arguments.integer_in("threads", 1, apps::kMaxThreadsFlag)) : std::max(1, num_threads() - 1));
  // The split needs a seed so its two subsets never overlap; without --seed, one is drawn and shown.
  const uint64_t seed = arguments.has("seed") ? static_cast<uint64_t>(arguments.integer("seed")) : std::random_device{}();
  if (!arguments.has("seed")) std::cout << "Seed: " << seed << " (pass --seed " << seed << " to repeat this run)\n";
  set_random_seed(seed);

  // The pipeline ends with our own prefetch, so the augmentation map runs on the prefetch thread,
  // not on the training thread.
  const image::ImageDirectoryOptions options{
      .color_mode = image::color_mode_from_name(arguments.text("color-mode")),
      .batch_size = batch_size,
      .image_size = image_size,
      .seed = seed,
      .validation_split = validation_split,
      .subset = validation_split > 0.0 ? image::Subset::Both : image::Subset::All,
      .interpolation = image::interpolation_from_name(arguments.text("interpolation")),
      .crop_to_aspect_ratio = arguments.flag("crop-to-aspect-ratio"),
      .skip_corrupt = arguments.flag("skip-corrupt"),
      .prefetch = false,
  };
  const image::ImageDatasets found = image::image_dataset_from_directory(data_dir, options);
  const std::vector<std::string> class_names = found.class_names;
  std::cout << "Classes: " << joined(class_names) << "\n";
  // A preview trains nothing, so a single class folder is worth looking at too.
  if (class_names.size() < 2 && preview_path.empty()) throw ValueError("a classifier needs at least 2 classes, " + data_dir + " has " + std::to_string(class_names.size()));

  const bool prefetch = !arguments.flag("no-prefetch");
  data::Dataset<LabeledData> train = found.dataset;
  if (augment.any()) {
    // Each batch's seed comes from data::random, which draws a new set each epoch and, in a run
    // resumed at epoch k, the set the uninterrupted run drew.
    train = data::zip(train, data::random(mix64(seed ^ 0xA0A0A0A0u))).map([augment](std::pair<LabeledData, uint64_t> batch_and_seed) {
      auto& [batch, batch_seed] = batch_and_seed;
      if (augment.flip) batch.x = image::random_flip_left_right(batch.x, mix64(batch_seed + 1));
      if (augment.brightness) batch.x = image::random_brightness(batch.x, /*max_delta=*/25.5f, mix64(batch_seed + 2));
      if (augment.contrast) batch.x = image::random_contrast(batch.x, /*lower=*/0.8f, /*upper=*/1.2f, mix64(batch_seed + 3));
      return std::move(batch);
    });
  }
  if (!preview_path.empty()) {
    write_preview(preview_path, train, class_names);
    return 0;
  }
  if (prefetch) train = train.prefetch(data::AUTOTUNE);
  std::optional<data::Dataset<LabeledData>> validation;
  if (found.validation) {
    validation = *found.validation;
    if (prefetch) validation = validation->prefetch(data::AUTOTUNE);
  }

  const int64_t channels = image::channels_of(options.color_mode);
  Sequential model = apps::make_model(model_name, Shape{image_size.height, image_size.width, channels},
                                     static_cast<int64_t>(class_names.size()), /*rescale_bytes=*/true);
  model.compile(optimizers::Adam(learning_rate), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.summary();

  FitOptions fit_options{.epochs = epochs, .callbacks = callbacks, .initial_epoch = apps::resume_if_requested(arguments, model)};
  if (validation) fit_options.validation_data = *validation;
  const History history = model.fit(train, fit_options);

  // The final evaluation: --test-data, else the validation subset (what kiln-mnist's "test" is).
  Logs final_logs;
  if (const std::string test_dir = arguments.text("test-data"); !test_dir.empty()) {
    image::ImageDirectoryOptions test_options = options;
    test_options.class_names = class_names;
    test_options.shuffle = false;
    test_options.validation_split = 0.0;
    test_options.subset = image::Subset::All;
    test_options.prefetch = prefetch;
    const image::ImageDatasets test = image::image_dataset_from_directory(test_dir, test_options);
    final_logs = model.evaluate(test.dataset, {.verbose = 0});
    std::printf("Test loss: %.4f - test accuracy: %.4f\n", final_logs.at("loss"), final_logs.at("accuracy"));
  } else if (validation) {
    final_logs = model.evaluate(*validation, {.verbose = 0});
    std::printf("Validation loss: %.4f - validation accuracy: %.4f\n", final_logs.at("loss"), final_logs.at("accuracy"));
  }
  apps::print_epoch_time(history, "model thread");
  if (found.dataset.skipped->count() > 0) {
    std::cout << "Skipped " << found.dataset.skipped->count() << " corrupt or empty image files\n";
  }

  apps::write_requested_files(arguments, model, history, final_logs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
