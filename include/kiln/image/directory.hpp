// kiln/image/directory.hpp — Keras's image_dataset_from_directory: a folder of class folders of
// images becomes a Dataset of (images, labels) batches.
//
// Intended usage:
//   1. main_directory/cat/*.png, main_directory/dog/*.jpg ...   (one folder per class)
//   2. auto found = image::image_dataset_from_directory("main_directory",
//          {.image_size = {180, 180}, .seed = 1, .validation_split = 0.2, .subset = image::Subset::Both});
//   3. model.fit(found.dataset, {.epochs = 5, .validation_data = *found.validation});
//      found.class_names == {"cat", "dog"}: label 0 is cat, label 1 is dog.
// Files are listed (and their sizes checked) up front on the calling thread, so a missing folder,
// an empty class folder or an empty file fails before training starts. Each image is read,
// decoded and resized lazily, in a parallel map on the pipeline's worker threads, and a prefetch
// thread keeps batches ready while the model trains: the pipeline is
//   range(files) -> shuffle(batch_size * 8, seed) -> batch -> map(load_image on each, AUTOTUNE) -> prefetch(AUTOTUNE),
// which gives the batches of Keras's map-then-batch with one hand-off between threads per batch
// instead of per file. A file that turns out corrupt when decoded is a PipelineError naming it
// (or is skipped with skip_corrupt). Pixels are float32 on the 0-255 scale, as Keras gives them; put
// layers::Rescaling(1 / 255.f) first in the model.
#pragma once

#include "kiln/data/dataset.hpp"
#include "kiln/image/ops.hpp"
#include "kiln/tensor.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::image {

// How labels are given (Keras's label_mode): a class index as a float32 scalar, so a batch's labels
// are [batch] (Int, for SparseCategoricalCrossentropy); one-hot [batch, classes] (Categorical, for
// CategoricalCrossentropy); 0 or 1 as [batch, 1] (Binary, for BinaryCrossentropy, exactly two
// classes); or no labels (None: use ImageDataset::images).
enum class LabelMode { Int, Categorical, Binary, None };
// Grayscale 1 channel, RGB 3, RGBA 4, whatever the files hold (decode_image converts).
enum class ColorMode { Grayscale, RGB, RGBA };
// All files (Keras's subset=None), the first 1 - validation_split share, the rest, or both.
enum class Subset { All, Training, Validation, Both };

// Keras's names ("int", "categorical", "binary", "none"; "grayscale", "rgb", "rgba"; "training",
// "validation", "both"); an unknown name is a ValueError listing the choices.
LabelMode label_mode_from_name(std::string_view name);
ColorMode color_mode_from_name(std::string_view name);
Subset subset_from_name(std::string_view name);
int channels_of(ColorMode color_mode);

// Keras's arguments and defaults, in Keras's order (designated initialisers must keep it).
struct ImageDirectoryOptions {
  // nullopt: labels inferred from the class folders (Keras's labels="inferred"). A list: one label
  // per image file, in the alphanumeric order of the paths of every image under the directory
  // (folders ignored); class_names are then the distinct labels, sorted, as text.
  std::optional<std::vector<int64_t>> labels;
  LabelMode label_mode = LabelMode::Int;
  // The classes to read and their order (label i is class_names[i]): class folders of the
  // directory, possibly only some of them. Empty: every class folder, sorted alphanumerically.
  std::vector<std::string> class_names;
  ColorMode color_mode = ColorMode::RGB;
  // nullopt: no batching; the dataset yields single (image, label) samples.
  std::optional<int64_t> batch_size = 32;
  ImageSize image_size = {256, 256};
  // Shuffle the file list once with the seed (this decides the split), and each epoch's order
  // with a buffer of batch_size * 8 files (1024 unbatched). Off: alphanumeric order, class by class.
  bool shuffle = true;
  // Without one, a seed is drawn from kiln's global generator (set_random_seed makes it repeatable),
  // but a validation_split with shuffle needs an explicit seed, so the two subsets never overlap.
  std::optional<uint64_t> seed;
  // With a subset: the share of files (after the seeded shuffle) that is the validation subset,
  // floor(validation_split * files) of them, taken from the end of the list.
  double validation_split = 0.0;
  Subset subset = Subset::All;
  Interpolation interpolation = Interpolation::Bilinear;
  bool follow_links = false;          // descend into folders that are symbolic links
  bool crop_to_aspect_ratio = false;  // see ResizeOptions
  bool pad_to_aspect_ratio = false;   // see ResizeOptions
  bool verbose = true;                // print "Found 60000 files belonging to 10 classes." and the split

  // kiln's own, not Keras's:
  // Skip a file that cannot be decoded (and an empty file) with a warning on standard error
  // instead of failing; ImageDataset::skipped counts them. The dataset's cardinality is then unknown.
  bool skip_corrupt = false;
  // Workers for the decoding map: AUTOTUNE, or a fixed count (1 decodes on the consumer's thread).
  int64_t num_parallel_calls = data::AUTOTUNE;
  // End the pipeline with prefetch(AUTOTUNE), as Keras does. Off only to measure what it buys.
  bool prefetch = true;
};

// The per-image work of the pipeline: read_file, decode_image to `channels`, then resize.
struct LoadImageOptions {
  int channels = 3;
  ImageSize image_size = {256, 256};
  ResizeOptions resize;
};
Tensor load_image(const std::string& path, const LoadImageOptions& options);

// The files of a directory and their labels, as Keras's index_directory lists them. Folders whose
// names start with "." are skipped at the class level, as Keras does.
struct ImageFiles {
  std::vector<std::string> file_paths;
  std::vector<int64_t> labels;  // one per file (empty for LabelMode::None)
  std::vector<std::string> class_names;
  std::vector<std::string> skipped_paths;  // empty files left out (skip_corrupt only)
};
// Lists every image file (.bmp .gif .jpeg .jpg .png, any case) in alphanumeric order, class by class,
// prints Keras's "Found ..." line (options.verbose), then shuffles the list with the seed when
// options.shuffle; no split. Throws FileError for a missing or unreadable directory, a class folder
// without images, no images at all, or an empty file (with skip_corrupt: left out, in skipped_paths).
ImageFiles index_directory(const std::string& directory, const ImageDirectoryOptions& options, uint64_t seed);

// The files skip_corrupt left out, with their reasons: shared by the subsets of one
// image_dataset_from_directory call and by all their iterations; safe to use from any thread.
class SkippedFiles {
 public:
  // Records a file (once; a later epoch meeting it again changes nothing) and prints
  // "Skipping <path>: <reason>" on standard error the first time.
  void add(const std::string& path, const std::string& reason);
  int64_t count() const;
  std::vector<std::string> paths() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> paths_;
};

// One subset's pipeline. It is the Dataset of (images, labels) batches itself, so it goes straight
// to fit() and evaluate(); like Keras's dataset it also carries class_names and file_paths.
// Ops such as map() return plain Datasets, without these (keep class_names before mapping).
class ImageDataset : public data::Dataset<LabeledData> {
 public:
  ImageDataset(data::Dataset<LabeledData> labeled, data::Dataset<Tensor> images, std::vector<std::string> class_names,
               std::vector<std::string> file_paths, std::vector<int64_t> labels, std::shared_ptr<SkippedFiles> skipped)
      : data::Dataset<LabeledData>(std::move(labeled)), images(std::move(images)), class_names(std::move(class_names)),
        file_paths(std::move(file_paths)), labels(std::move(labels)), skipped(std::move(skipped)) {}

  // The same pipeline without labels: batches [batch, height, width, channels]. This is what
  // LabelMode::None gives (iterating the labelled dataset then is a ValueError), and what predict() takes.
  data::Dataset<Tensor> images;
  std::vector<std::string> class_names;  // label i is class_names[i]
  std::vector<std::string> file_paths;   // this subset's files, in listing order (before each epoch's shuffle)
  std::vector<int64_t> labels;           // the class index of each of file_paths (empty for LabelMode::None)
  // With skip_corrupt: the files skipped so far, empty ones at listing and undecodable ones as
  // iterations met them.
  std::shared_ptr<SkippedFiles> skipped;
};

struct ImageDatasets {
  // Every file, or the subset asked for; with Subset::Both, the training subset.
  ImageDataset dataset;
  // Subset::Both only: the validation subset (not reshuffled each epoch, as in Keras).
  std::optional<ImageDataset> validation;
  std::vector<std::string> class_names;
};

// keras.utils.image_dataset_from_directory. Argument errors are ValueErrors and file problems
// FileErrors, both before anything is decoded.
ImageDatasets image_dataset_from_directory(const std::string& directory, const ImageDirectoryOptions& options = {});

}  // namespace kiln::image
