// Tests of image_dataset_from_directory (kiln/image/directory.hpp) on image folders written here
// with stb_image_write: PNG, JPEG, BMP and GIF files of mixed sizes, grey and colour. They check
// Keras's listing rules (sorted classes and files, nested folders, hidden class folders, allowed
// extensions), labels in every label_mode, shapes in every color_mode, the seeded shuffle and
// split, pixel values after resizing, every error, and a model learning from such a folder.
#include "kiln/image/directory.hpp"

#include "image_files.hpp"
#include "kiln/error.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/layers/rescaling.hpp"
#include "kiln/model.hpp"

#include <doctest/doctest.h>

#include "stream_capture.hpp"

#include "error_message.hpp"
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using kiln::testing::StreamCapture;

using kiln::testing::error_message;
using kiln::testing::contains;

using kiln::FileError;
using kiln::LabeledData;
using kiln::Shape;
using kiln::Tensor;
using kiln::ValueError;
using kiln::data::PipelineError;
using kiln_test::Bytes;
using kiln_test::TemporaryFolder;
namespace image = kiln::image;


std::vector<float> values(const Tensor& t) { return {t.values().begin(), t.values().end()}; }

// A flat grey square of the given value.
void write_flat_png(const std::string& path, int size, uint8_t value) {
  kiln_test::write_png(path, size, size, 1, Bytes(static_cast<size_t>(size * size), value));
}

// The fixture of most tests: two classes, files of every format and several sizes, plus what
// must be ignored (a text file, a hidden folder, a file at the top).
//   animals/cat/a.png          RGB 4 wide x 6 high
//   animals/cat/b.JPG          RGB 8x8 (upper-case extension)
//   animals/cat/notes.txt      ignored
//   animals/cat/kittens/c.png  grey 5x5 (nested folders belong to their class)
//   animals/dog/d.png          grey 3x3
//   animals/dog/e.bmp          RGB 2x2
//   animals/dog/f.gif          2x1, two frames
//   animals/.thumbnails/x.png  hidden: not a class
//   animals/readme.png         at the top: not in any class
std::string make_animals(const TemporaryFolder& folder) {
  kiln_test::write_png(folder.file("animals/cat/a.png"), 4, 6, 3, Bytes(4 * 6 * 3, 200));
  kiln_test::write_jpeg(folder.file("animals/cat/b.JPG"), 8, 8, 3, Bytes(8 * 8 * 3, 100));
  kiln_test::write_bytes(folder.file("animals/cat/notes.txt"), {'h', 'i'});
  write_flat_png(folder.file("animals/cat/kittens/c.png"), 5, 50);
  write_flat_png(folder.file("animals/dog/d.png"), 3, 30);
  kiln_test::write_bmp(folder.file("animals/dog/e.bmp"), 2, 2, 3, Bytes(2 * 2 * 3, 60));
  kiln_test::write_bytes(folder.file("animals/dog/f.gif"),
                         kiln_test::gif_bytes(2, 1, {{1, 1}, {0, 0}}, {{0, 0, 0}, {90, 90, 90}}));
  write_flat_png(folder.file("animals/.thumbnails/x.png"), 2, 1);
  write_flat_png(folder.file("animals/readme.png"), 2, 1);
  return folder.path() + "/animals";
}

// `per_class` flat grey 2x2 images in each of the classes, image k of the whole set having the
// value k (so a pixel tells which file it came from): classes[c]/img_<i>.png.
std::string make_numbered(const TemporaryFolder& folder, const std::vector<std::string>& classes, int per_class) {
  int k = 0;
  for (const std::string& name : classes) {
    for (int i = 0; i < per_class; ++i) {
      write_flat_png(folder.file("numbered/" + name + "/img_" + std::to_string(10 + i) + ".png"), 2, static_cast<uint8_t>(k++));
    }
  }
  return folder.path() + "/numbered";
}

// Every batch of one epoch.
std::vector<LabeledData> one_epoch(const kiln::data::Dataset<LabeledData>& dataset) {
  std::vector<LabeledData> batches;
  for (const LabeledData& batch : dataset) batches.push_back(batch);
  return batches;
}

// The file number (pixel value) of every sample of one epoch, in order.
std::vector<int> file_numbers(const kiln::data::Dataset<LabeledData>& dataset) {
  std::vector<int> numbers;
  for (const LabeledData& batch : dataset) {
    for (int64_t i = 0; i < batch.x.rows(); ++i) numbers.push_back(static_cast<int>(batch.x[i * batch.x.row_size()]));
  }
  return numbers;
}



std::vector<std::string> relative(const std::vector<std::string>& paths, const std::string& root) {
  std::vector<std::string> out;
  for (const std::string& path : paths) out.push_back(path.substr(root.size() + 1));
  return out;
}

}  // namespace

// ---- listing ------------------------------------------------------------------------------------------

TEST_CASE("image_dataset_from_directory: classes and files in Keras's order, Keras's message") {
  TemporaryFolder folder;
  const std::string root = make_animals(folder);
  StreamCapture captured(std::cout);
  const image::ImageDatasets found = image::image_dataset_from_directory(root, {.shuffle = false});
  CHECK(captured.text() == "Found 6 files belonging to 2 classes.\n");
  CHECK(found.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(found.dataset.class_names == found.class_names);
  CHECK(relative(found.dataset.file_paths, root) ==
        std::vector<std::string>{"cat/a.png", "cat/b.JPG", "cat/kittens/c.png", "dog/d.png", "dog/e.bmp", "dog/f.gif"});
  CHECK(found.dataset.labels == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  CHECK_FALSE(found.validation.has_value());
  CHECK(found.dataset.cardinality() == 1);  // 6 files in batches of 32
}

TEST_CASE("image_dataset_from_directory: int labels [batch], images [batch, height, width, 3] 0-255") {
  TemporaryFolder folder;
  const std::string root = make_animals(folder);
  const auto found = image::image_dataset_from_directory(
      root, {.batch_size = 4, .image_size = {5, 7}, .shuffle = false, .verbose = false});
  const std::vector<LabeledData> batches = one_epoch(found.dataset);
  REQUIRE(batches.size() == 2);
  CHECK(batches[0].x.shape() == Shape{4, 5, 7, 3});
  CHECK(batches[1].x.shape() == Shape{2, 5, 7, 3});
  CHECK(values(batches[0].y) == std::vector<float>{0, 0, 0, 1});
  CHECK(values(batches[1].y) == std::vector<float>{1, 1});
  // Flat images stay flat through resizing: a.png is 200 everywhere; the grey d.png (30) becomes RGB.
  const Tensor& first = batches[0].x;
  for (int64_t i = 0; i < first.row_size(); ++i) CHECK(first[i] == 200.0f);
  for (int64_t i = 3 * first.row_size(); i < 4 * first.row_size(); ++i) CHECK(first[i] == 30.0f);
  // The JPEG (b.JPG, 100) within a few levels; the GIF's first frame (index 1: grey 90).
  for (int64_t i = first.row_size(); i < 2 * first.row_size(); ++i) CHECK(std::abs(first[i] - 100.0f) <= 3.0f);
  const Tensor& second = batches[1].x;
  for (int64_t i = second.row_size(); i < 2 * second.row_size(); ++i) CHECK(second[i] == 90.0f);
}

TEST_CASE("image_dataset_from_directory: color_mode grayscale and rgba give 1 and 4 channels") {
  TemporaryFolder folder;
  const std::string root = make_animals(folder);
  for (auto [mode, channels] : {std::pair{image::ColorMode::Grayscale, 1}, std::pair{image::ColorMode::RGBA, 4}}) {
    const auto found =
        image::image_dataset_from_directory(root, {.color_mode = mode, .image_size = {3, 3}, .shuffle = false, .verbose = false});
    const std::vector<LabeledData> batches = one_epoch(found.dataset);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].x.shape() == Shape{6, 3, 3, channels});
  }
  CHECK(image::color_mode_from_name("grayscale") == image::ColorMode::Grayscale);
  CHECK(image::channels_of(image::ColorMode::RGB) == 3);
  CHECK_THROWS_AS(image::color_mode_from_name("cmyk"), ValueError);
}

TEST_CASE("image_dataset_from_directory: categorical is one-hot [batch, classes]; binary is [batch, 1], 2 classes only") {
  TemporaryFolder folder;
  const std::string three = make_numbered(folder, {"a", "b", "c"}, 2);
  const auto categorical = image::image_dataset_from_directory(
      three, {.label_mode = image::LabelMode::Categorical, .image_size = {2, 2}, .shuffle = false, .verbose = false});
  const std::vector<LabeledData> batches = one_epoch(categorical.dataset);
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].y.shape() == Shape{6, 3});
  CHECK(values(batches[0].y) == std::vector<float>{1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1});

  const std::string error = error_message([&] {
    image::image_dataset_from_directory(three, {.label_mode = image::LabelMode::Binary, .verbose = false});
  });
  CHECK(contains(error, "exactly 2 classes"));
  CHECK(contains(error, "['a', 'b', 'c']"));

  TemporaryFolder other;
  const std::string two = make_numbered(other, {"no", "yes"}, 2);
  const auto binary = image::image_dataset_from_directory(
      two, {.label_mode = image::LabelMode::Binary, .image_size = {2, 2}, .shuffle = false, .verbose = false});
  const std::vector<LabeledData> binary_batches = one_epoch(binary.dataset);
  CHECK(binary_batches[0].y.shape() == Shape{4, 1});
  CHECK(values(binary_batches[0].y) == std::vector<float>{0, 0, 1, 1});
  CHECK(image::label_mode_from_name("categorical") == image::LabelMode::Categorical);
  CHECK_THROWS_AS(image::label_mode_from_name("sparse"), ValueError);
}

TEST_CASE("image_dataset_from_directory: label_mode none gives images alone, from every folder") {
  TemporaryFolder folder;
  const std::string root = make_animals(folder);
  StreamCapture captured(std::cout);
  const auto found = image::image_dataset_from_directory(
      root, {.label_mode = image::LabelMode::None, .image_size = {2, 2}, .shuffle = false});
  // As Keras with labels=None: the directory structure is ignored, every image under it counts.
  CHECK(captured.text() == "Found 8 files.\n");
  CHECK(found.dataset.labels.empty());
  CHECK(found.class_names.empty());
  int64_t images = 0;
  for (const Tensor& batch : found.dataset.images) {
    CHECK(batch.shape().rank() == 4);
    images += batch.rows();
  }
  CHECK(images == 8);
  CHECK_THROWS_AS(one_epoch(found.dataset), ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.label_mode = image::LabelMode::None, .class_names = {"cat"}}),
                  ValueError);
}

TEST_CASE("image_dataset_from_directory: explicit class_names set the order and may pick a subset") {
  TemporaryFolder folder;
  const std::string root = make_animals(folder);
  const auto swapped =
      image::image_dataset_from_directory(root, {.class_names = {"dog", "cat"}, .shuffle = false, .verbose = false});
  CHECK(swapped.class_names == std::vector<std::string>{"dog", "cat"});
  CHECK(relative(swapped.dataset.file_paths, root).front() == "dog/d.png");
  CHECK(swapped.dataset.labels == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  const auto dogs = image::image_dataset_from_directory(root, {.class_names = {"dog"}, .shuffle = false, .verbose = false});
  CHECK(dogs.dataset.file_paths.size() == 3);

  const std::string error = error_message(
      [&] { image::image_dataset_from_directory(root, {.class_names = {"cat", "cow"}, .verbose = false}); });
  CHECK(contains(error, "did not match"));
  CHECK(contains(error, "['cat', 'dog']"));
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.class_names = {"cat", "cat"}, .verbose = false}), ValueError);
}

TEST_CASE("image_dataset_from_directory: an explicit list of labels follows the sorted paths") {
  TemporaryFolder folder;
  write_flat_png(folder.file("flat/b.png"), 2, 1);
  write_flat_png(folder.file("flat/a.png"), 2, 2);
  write_flat_png(folder.file("flat/sub/c.png"), 2, 3);
  const std::string root = folder.path() + "/flat";
  StreamCapture captured(std::cout);
  const auto found = image::image_dataset_from_directory(root, {.labels = std::vector<int64_t>{1, 0, 1}, .shuffle = false});
  CHECK(captured.text() == "Found 3 files belonging to 2 classes.\n");
  CHECK(relative(found.dataset.file_paths, root) == std::vector<std::string>{"a.png", "b.png", "sub/c.png"});
  CHECK(found.class_names == std::vector<std::string>{"0", "1"});
  const std::vector<LabeledData> batches = one_epoch(found.dataset);
  CHECK(values(batches[0].y) == std::vector<float>{1, 0, 1});
  CHECK(contains(error_message([&] {
                   image::image_dataset_from_directory(root, {.labels = std::vector<int64_t>{1, 0}, .verbose = false});
                 }),
                 "2 labels but 3 files"));
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.labels = std::vector<int64_t>{0, 1, 0}, .class_names = {"x"}}),
                  ValueError);
}

TEST_CASE("image_dataset_from_directory: only the class folder's symbolic links are followed unless follow_links") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 1);
  write_flat_png(folder.file("elsewhere/more.png"), 2, 9);
  std::filesystem::create_directory_symlink(folder.path() + "/elsewhere", root + "/a/linked");
  CHECK(image::image_dataset_from_directory(root, {.shuffle = false, .verbose = false}).dataset.file_paths.size() == 2);
  CHECK(image::image_dataset_from_directory(root, {.shuffle = false, .follow_links = true, .verbose = false})
            .dataset.file_paths.size() == 3);
}

// ---- pixels -------------------------------------------------------------------------------------------

TEST_CASE("image_dataset_from_directory: pixel values after resizing a known image") {
  TemporaryFolder folder;
  kiln_test::write_png(folder.file("known/only/k.png"), 2, 2, 1, {0, 10, 20, 30});
  const std::string root = folder.path() + "/known";
  auto first_image = [&](image::Interpolation interpolation) {
    const auto found = image::image_dataset_from_directory(
        root, {.color_mode = image::ColorMode::Grayscale, .image_size = {4, 4}, .interpolation = interpolation, .verbose = false});
    return values(one_epoch(found.dataset).at(0).x);
  };
  // Worked out in test_image_ops.cpp from the half-pixel formulas.
  CHECK(first_image(image::Interpolation::Bilinear) ==
        std::vector<float>{0, 2.5, 7.5, 10, 5, 7.5, 12.5, 15, 15, 17.5, 22.5, 25, 20, 22.5, 27.5, 30});
  CHECK(first_image(image::Interpolation::Nearest) ==
        std::vector<float>{0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30, 20, 20, 30, 30});

  // crop_to_aspect_ratio: a 2-wide, 4-high image to 2x2 keeps rows 1 and 2.
  kiln_test::write_png(folder.file("tall/only/t.png"), 2, 4, 1, {0, 1, 2, 3, 4, 5, 6, 7});
  const auto cropped = image::image_dataset_from_directory(
      folder.path() + "/tall",
      {.color_mode = image::ColorMode::Grayscale, .image_size = {2, 2}, .crop_to_aspect_ratio = true, .verbose = false});
  CHECK(values(one_epoch(cropped.dataset).at(0).x) == std::vector<float>{2, 3, 4, 5});
}

TEST_CASE("image_dataset_from_directory: unbatched, each element is one image [h, w, c] and a scalar label") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 2);
  const auto found = image::image_dataset_from_directory(
      root, {.color_mode = image::ColorMode::Grayscale, .batch_size = std::nullopt, .image_size = {2, 2}, .shuffle = false,
             .verbose = false});
  const std::vector<LabeledData> samples = one_epoch(found.dataset);
  REQUIRE(samples.size() == 4);
  CHECK(samples[0].x.shape() == Shape{2, 2, 1});
  CHECK(samples[0].y.shape() == Shape{});
  CHECK(samples[3].y[0] == 1.0f);
}

// ---- shuffling and splitting ---------------------------------------------------------------------------

TEST_CASE("image_dataset_from_directory: the seeded shuffle repeats across calls and reshuffles each epoch") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 12);
  const image::ImageDirectoryOptions options{.batch_size = 4, .image_size = {2, 2}, .seed = 5, .verbose = false};
  const auto first = image::image_dataset_from_directory(root, options);
  const auto second = image::image_dataset_from_directory(root, options);
  CHECK(first.dataset.file_paths == second.dataset.file_paths);
  const std::vector<int> epoch_1 = file_numbers(first.dataset), epoch_2 = file_numbers(first.dataset);
  CHECK(epoch_1 == file_numbers(second.dataset));
  CHECK(epoch_2 == file_numbers(second.dataset));
  CHECK(epoch_1 != epoch_2);
  std::vector<int> sorted = epoch_1;
  std::sort(sorted.begin(), sorted.end());
  for (int k = 0; k < 24; ++k) CHECK(sorted[static_cast<size_t>(k)] == k);  // every file once
  // Labels travel with their images: files 0-11 are class a, 12-23 class b.
  for (const LabeledData& batch : first.dataset) {
    for (int64_t i = 0; i < batch.x.rows(); ++i) CHECK(batch.y[i] == (batch.x[i * batch.x.row_size()] < 12 ? 0.0f : 1.0f));
  }
  // Without shuffling: alphanumeric order, every epoch.
  const auto ordered = image::image_dataset_from_directory(root, {.image_size = {2, 2}, .shuffle = false, .verbose = false});
  std::vector<int> in_order(24);
  for (int k = 0; k < 24; ++k) in_order[static_cast<size_t>(k)] = k;
  CHECK(file_numbers(ordered.dataset) == in_order);
  CHECK(file_numbers(ordered.dataset) == in_order);
}

TEST_CASE("image_dataset_from_directory: the same batches with any decoding parallelism, with or without prefetch") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b", "c"}, 7);
  auto numbers = [&](int64_t parallel, bool prefetch) {
    return file_numbers(image::image_dataset_from_directory(
                            root, {.batch_size = 5, .image_size = {3, 3}, .seed = 11, .verbose = false,
                                   .num_parallel_calls = parallel, .prefetch = prefetch})
                            .dataset);
  };
  const std::vector<int> serial = numbers(1, false);
  CHECK(numbers(2, false) == serial);
  CHECK(numbers(kiln::data::AUTOTUNE, true) == serial);
}

TEST_CASE("image_dataset_from_directory: validation_split gives disjoint subsets, stable for a seed") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 10);
  auto subset = [&](image::Subset which, uint64_t seed) {
    return image::image_dataset_from_directory(
        root, {.image_size = {2, 2}, .seed = seed, .validation_split = 0.3, .subset = which, .verbose = false});
  };
  const std::vector<std::string> training = subset(image::Subset::Training, 7).dataset.file_paths;
  const std::vector<std::string> validation = subset(image::Subset::Validation, 7).dataset.file_paths;
  CHECK(training.size() == 14);   // 20 - floor(0.3 * 20)
  CHECK(validation.size() == 6);
  std::set<std::string> all(training.begin(), training.end());
  for (const std::string& path : validation) CHECK(all.insert(path).second);  // disjoint
  CHECK(all.size() == 20);
  CHECK(subset(image::Subset::Training, 7).dataset.file_paths == training);  // stable
  CHECK(subset(image::Subset::Training, 8).dataset.file_paths != training);  // another seed, another split

  StreamCapture captured(std::cout);
  const auto both = image::image_dataset_from_directory(
      root, {.image_size = {2, 2}, .seed = 7, .validation_split = 0.3, .subset = image::Subset::Both});
  CHECK(captured.text() == "Found 20 files belonging to 2 classes.\nUsing 14 files for training.\nUsing 6 files for validation.\n");
  REQUIRE(both.validation.has_value());
  CHECK(both.dataset.file_paths == training);
  CHECK(both.validation->file_paths == validation);
  // Keras does not reshuffle the validation subset of "both": every epoch in the same order.
  CHECK(file_numbers(*both.validation) == file_numbers(*both.validation));
  int64_t seen = 0;
  for (const LabeledData& batch : *both.validation) seen += batch.x.rows();
  CHECK(seen == 6);
}

TEST_CASE("image_dataset_from_directory: Keras's argument errors") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 2);
  const std::string no_seed = error_message([&] {
    image::image_dataset_from_directory(root, {.validation_split = 0.2, .subset = image::Subset::Training});
  });
  CHECK(contains(no_seed, "you must provide a seed"));
  // Without shuffling the split needs no seed.
  CHECK_NOTHROW(image::image_dataset_from_directory(
      root, {.shuffle = false, .validation_split = 0.5, .subset = image::Subset::Training, .verbose = false}));
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.seed = 1, .validation_split = 0.2}), ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.seed = 1, .subset = image::Subset::Validation}), ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.seed = 1, .validation_split = 1.0, .subset = image::Subset::Both}),
                  ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.batch_size = 0}), ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.image_size = {0, 5}}), ValueError);
  CHECK_THROWS_AS(image::image_dataset_from_directory(root, {.crop_to_aspect_ratio = true, .pad_to_aspect_ratio = true}),
                  ValueError);
  // A split that leaves a subset empty (4 files, 0.1 of them is 0 files).
  CHECK(contains(error_message([&] {
                   image::image_dataset_from_directory(
                       root, {.seed = 1, .validation_split = 0.1, .subset = image::Subset::Validation, .verbose = false});
                 }),
                 "No validation images"));
  CHECK(image::subset_from_name("both") == image::Subset::Both);
  CHECK_THROWS_AS(image::subset_from_name("test"), ValueError);
}

// ---- bad input ----------------------------------------------------------------------------------------

TEST_CASE("image_dataset_from_directory: missing, non-folder, class-less and image-less paths fail up front") {
  TemporaryFolder folder;
  const std::string missing = error_message([&] { image::image_dataset_from_directory(folder.path() + "/nowhere"); });
  CHECK(contains(missing, "no such folder"));
  CHECK(contains(missing, "nowhere"));

  write_flat_png(folder.file("loose/x.png"), 2, 1);
  CHECK(contains(error_message([&] { image::image_dataset_from_directory(folder.path() + "/loose/x.png"); }), "is not a folder"));
  const std::string no_classes = error_message([&] { image::image_dataset_from_directory(folder.path() + "/loose"); });
  CHECK(contains(no_classes, "no class folders in"));
  CHECK(contains(no_classes, "label_mode none"));  // its images lie at the top: says how to read them

  std::filesystem::create_directories(folder.path() + "/some/full");
  std::filesystem::create_directories(folder.path() + "/some/empty");
  write_flat_png(folder.file("some/full/y.png"), 2, 1);
  kiln_test::write_bytes(folder.file("some/empty/readme.txt"), {'x'});
  const std::string empty_class = error_message([&] { image::image_dataset_from_directory(folder.path() + "/some"); });
  CHECK(contains(empty_class, "class folder"));
  CHECK(contains(empty_class, "some/empty contains no images"));
  CHECK_THROWS_AS(image::image_dataset_from_directory(folder.path() + "/some"), FileError);

  std::filesystem::create_directories(folder.path() + "/bare");
  const std::string no_images = error_message(
      [&] { image::image_dataset_from_directory(folder.path() + "/bare", {.label_mode = image::LabelMode::None}); });
  CHECK(contains(no_images, "No images found in directory"));
  CHECK(contains(no_images, ".bmp, .gif, .jpeg, .jpg, .png"));
}

TEST_CASE("image_dataset_from_directory: an unreadable folder is a FileError naming it") {
  if (geteuid() == 0) {
    MESSAGE("running as root, for whom folder permissions are not enforced: skipped");
    return;
  }
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 1);
  std::filesystem::permissions(root + "/b", std::filesystem::perms::none);
  const std::string error = error_message([&] { image::image_dataset_from_directory(root, {.verbose = false}); });
  std::filesystem::permissions(root + "/b", std::filesystem::perms::owner_all);
  CHECK(contains(error, root + "/b"));
}

TEST_CASE("image_dataset_from_directory: an empty image file fails before training; skip_corrupt leaves it out") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 2);
  kiln_test::write_bytes(folder.file("numbered/b/zero.png"), {});
  const std::string error = error_message([&] { image::image_dataset_from_directory(root, {.verbose = false}); });
  CHECK(contains(error, "numbered/b/zero.png is empty (0 bytes)"));
  const auto skipping = image::image_dataset_from_directory(root, {.image_size = {2, 2}, .verbose = false, .skip_corrupt = true});
  CHECK(skipping.dataset.file_paths.size() == 4);
  CHECK(skipping.dataset.skipped->count() == 1);
  CHECK(contains(skipping.dataset.skipped->paths().at(0), "zero.png"));
}

TEST_CASE("image_dataset_from_directory: a corrupt image is a PipelineError naming the file; skip_corrupt skips it") {
  TemporaryFolder folder;
  const std::string root = make_numbered(folder, {"a", "b"}, 3);
  kiln_test::write_bytes(folder.file("numbered/a/broken.png"), {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'});
  const Bytes jpeg = kiln_test::jpeg_bytes(8, 8, 1, Bytes(64, 80));
  kiln_test::write_bytes(folder.file("numbered/b/cut.jpg"), Bytes(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() / 2)));
  const auto strict = image::image_dataset_from_directory(root, {.image_size = {2, 2}, .shuffle = false, .verbose = false});
  std::string message;
  try {
    one_epoch(strict.dataset);
  } catch (const PipelineError& error) {
    message = error.what();
  }
  CHECK(contains(message, "numbered/a/broken.png"));
  CHECK(contains(message, "not a PNG, JPEG, GIF or BMP image"));

  const auto lenient = image::image_dataset_from_directory(
      root, {.batch_size = 3, .image_size = {2, 2}, .seed = 3, .verbose = false, .skip_corrupt = true});
  for (int epoch = 0; epoch < 2; ++epoch) {  // a second epoch meets them again but counts them once
    std::vector<int> numbers = file_numbers(lenient.dataset);
    std::sort(numbers.begin(), numbers.end());
    CHECK(numbers == std::vector<int>{0, 1, 2, 3, 4, 5});
  }
  CHECK(lenient.dataset.skipped->count() == 2);
  CHECK(lenient.dataset.cardinality() == kiln::data::kUnknownCardinality);
}

// ---- training ----------------------------------------------------------------------------------------

TEST_CASE("image_dataset_from_directory: a model learns dark from bright images through the pipeline") {
  TemporaryFolder folder;
  for (int i = 0; i < 12; ++i) {
    write_flat_png(folder.file("shades/dark/" + std::to_string(i) + ".png"), 4 + i % 3, static_cast<uint8_t>(10 + 3 * i));
    write_flat_png(folder.file("shades/bright/" + std::to_string(i) + ".png"), 5, static_cast<uint8_t>(200 + 3 * i));
  }
  kiln::set_random_seed(3);
  const auto found = image::image_dataset_from_directory(
      folder.path() + "/shades", {.color_mode = image::ColorMode::Grayscale, .batch_size = 8, .image_size = {4, 4},
                                  .seed = 1, .validation_split = 0.25, .subset = image::Subset::Both, .verbose = false});
  kiln::Sequential model({
      kiln::layers::Rescaling(1.0f / 255.0f, 0.0f, Shape{4, 4, 1}),
      kiln::layers::Flatten(),
      kiln::layers::Dense(2, kiln::Activation::Softmax),
  });
  model.compile(kiln::optimizers::Adam(0.05f), kiln::losses::SparseCategoricalCrossentropy(), {kiln::metrics::Accuracy()});
  const kiln::History history = model.fit(found.dataset, {.epochs = 15, .verbose = 0, .validation_data = *found.validation});
  CHECK(history.history.at("val_accuracy").back() == 1.0);
  CHECK(found.class_names == std::vector<std::string>{"bright", "dark"});
}
