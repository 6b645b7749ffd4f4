// image_dataset_from_directory: list the files (on the calling thread), split them, and describe
// the pipeline that loads them (on the pipeline's threads, when iterated).
#include "kiln/image/directory.hpp"

#include "kiln/error.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <set>

namespace kiln::image {

namespace fs = std::filesystem;

namespace {

constexpr std::array<std::string_view, 5> kImageExtensions = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
constexpr const char* kAllowedFormats = ".bmp, .gif, .jpeg, .jpg, .png";

bool is_image_file_name(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::any_of(kImageExtensions.begin(), kImageExtensions.end(),
                     [&](std::string_view extension) { return lower.ends_with(extension); });
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string text = "[";
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", '" : "'") + names[i] + "'";
  return text + "]";
}

// The folder must exist and be readable; says which of these it is not.
void check_folder(const fs::path& folder) {
  std::error_code error;
  const fs::file_status status = fs::status(folder, error);
  if (error && error != std::errc::no_such_file_or_directory) {
    throw FileError("cannot read the folder " + folder.string() + ": " + error.message());
  }
  if (!fs::exists(status)) throw FileError("no such folder: " + folder.string());
  if (!fs::is_directory(status)) throw FileError(folder.string() + " is not a folder");
}

// Every image file under `folder`, in os.walk's sorted order as Keras lists them: folders by their
// path, then the files of each folder by name.
std::vector<std::string> image_files_under(const fs::path& folder, bool follow_links) {
  check_folder(folder);
  std::map<std::string, std::vector<std::string>> files_by_folder;  // sorted by the folder's path
  std::error_code error;
  const auto options = follow_links ? fs::directory_options::follow_directory_symlink : fs::directory_options::none;
  fs::recursive_directory_iterator entry(folder, options, error);
  for (; !error && entry != fs::recursive_directory_iterator(); entry.increment(error)) {
    std::error_code type_error;
    if (!entry->is_regular_file(type_error) || !is_image_file_name(entry->path().filename().string())) continue;
    files_by_folder[entry->path().parent_path().string()].push_back(entry->path().filename().string());
  }
  if (error) throw FileError("cannot list the folder " + folder.string() + ": " + error.message());
  std::vector<std::string> paths;
  for (auto& [parent, names] : files_by_folder) {
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) paths.push_back((fs::path(parent) / name).string());
  }
  return paths;
}

// The class folders of `directory`: its subfolders not starting with ".", sorted.
std::vector<std::string> class_folders(const fs::path& directory) {
  check_folder(directory);
  std::vector<std::string> names;
  std::error_code error;
  for (fs::directory_iterator entry(directory, error); !error && entry != fs::directory_iterator(); entry.increment(error)) {
    std::error_code type_error;
    const std::string name = entry->path().filename().string();
    if (entry->is_directory(type_error) && !name.starts_with(".")) names.push_back(name);
  }
  if (error) throw FileError("cannot list the folder " + directory.string() + ": " + error.message());
  std::sort(names.begin(), names.end());
  return names;
}

void check_arguments(const ImageDirectoryOptions& options) {
  if (options.labels && !options.class_names.empty()) {
    throw ValueError("image_dataset_from_directory: class_names can only be given with labels inferred from the "
                     "class folders, not with an explicit list of labels");
  }
  if (options.label_mode == LabelMode::None && !options.class_names.empty()) {
    throw ValueError("image_dataset_from_directory: with label_mode none (no labels), class_names cannot be given");
  }
  if (options.batch_size && *options.batch_size < 1) {
    throw ValueError("image_dataset_from_directory: batch_size must be at least 1 (or nullopt for no batching), got " +
                     std::to_string(*options.batch_size));
  }
  if (options.image_size.height < 1 || options.image_size.width < 1) {
    throw ValueError("image_dataset_from_directory: image_size must be at least 1x1, got " +
                     std::to_string(options.image_size.height) + "x" + std::to_string(options.image_size.width));
  }
  if (options.crop_to_aspect_ratio && options.pad_to_aspect_ratio) {
    throw ValueError("image_dataset_from_directory: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be set");
  }
  // Keras's check_validation_split_arg.
  const double split = options.validation_split;
  if (split != 0.0 && !(split > 0.0 && split < 1.0)) {
    throw ValueError("image_dataset_from_directory: validation_split must be between 0 and 1, got " + std::to_string(split));
  }
  if ((split != 0.0) != (options.subset != Subset::All)) {
    throw ValueError("image_dataset_from_directory: if subset is set, validation_split must be set, and inversely");
  }
  if (split != 0.0 && options.shuffle && !options.seed) {
    throw ValueError("image_dataset_from_directory: if using validation_split and shuffling the data, you must provide "
                     "a seed, to make sure that there is no overlap between the training and validation subset");
  }
}

// Labels as the dataset gives them, for one file.
Tensor label_tensor(int64_t label, LabelMode mode, int64_t class_count) {
  switch (mode) {
    case LabelMode::Categorical: {
      Tensor one_hot(Shape{class_count});
      one_hot[label] = 1.0f;
      return one_hot;
    }
    case LabelMode::Binary: return Tensor(Shape{1}, static_cast<float>(label));
    default: return Tensor(Shape{}, static_cast<float>(label));
  }
}

// The files of one subset, shared by every iteration of its pipeline.
struct SubsetFiles {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

bool is_empty_batch(const Tensor& images) { return images.empty(); }
bool is_empty_batch(const LabeledData& batch) { return batch.x.empty(); }

// range(files) -> shuffle -> batch -> map(load the batch's files, parallel) -> prefetch, for
// elements of type Element made by make_element(file index). Unbatched: map(load one file).
template <class Element>
data::Dataset<Element> build_pipeline(int64_t file_count, bool shuffle, uint64_t seed, const ImageDirectoryOptions& options,
                                      std::function<Element(int64_t)> make_element,
                                      const std::shared_ptr<SkippedFiles>& skipped,
                                      const std::shared_ptr<const SubsetFiles>& files) {
  data::Dataset<int64_t> indices = data::range(file_count);
  if (shuffle) indices = indices.shuffle(options.batch_size ? *options.batch_size * 8 : 1024, seed);

  // One file's element; with skip_corrupt, nullopt (and a warning) for a file that fails to decode.
  auto load = [make_element, skipped, files, skip_corrupt = options.skip_corrupt](int64_t index) -> std::optional<Element> {
    if (!skip_corrupt) return make_element(index);
    try {
      return make_element(index);
    } catch (const FileError& error) {
      // The message names the file already; keep only what is wrong with it.
      const std::string& path = files->paths[static_cast<size_t>(index)];
      std::string reason = error.what();
      if (const size_t at = reason.find(path + ": "); at != std::string::npos) reason = reason.substr(at + path.size() + 2);
      skipped->add(path, reason);
      return std::nullopt;
    }
  };

  std::optional<data::Dataset<Element>> elements;
  if (options.batch_size) {
    // Each map call loads a whole batch: one hand-off between threads per batch instead of per
    // file, which matters when a small image decodes in about as long (~10 us) as a hand-off takes.
    // The batches are those that batch() after a per-file map would make, in the same order.
    elements = indices.batch(*options.batch_size)
                   .map(
                       [load](const std::vector<int64_t>& batch_indices) {
                         std::vector<Element> loaded;
                         loaded.reserve(batch_indices.size());
                         for (const int64_t index : batch_indices) {
                           if (std::optional<Element> element = load(index)) loaded.push_back(std::move(*element));
                         }
                         return data::stack(std::move(loaded));  // a skipped file leaves its batch one short
                       },
                       options.num_parallel_calls);
    if (options.skip_corrupt) elements = elements->filter([](const Element& batch) { return !is_empty_batch(batch); });
  } else if (options.skip_corrupt) {
    elements = indices.map(load, options.num_parallel_calls)
                   .filter([](const std::optional<Element>& element) { return element.has_value(); })
                   .map([](std::optional<Element> element) { return std::move(*element); });
  } else {
    elements = indices.map(make_element, options.num_parallel_calls);
  }
  if (options.prefetch) elements = elements->prefetch(data::AUTOTUNE);
  return *elements;
}

ImageDataset make_image_dataset(const ImageFiles& listing, size_t begin, size_t end, bool shuffle, uint64_t seed,
                                const ImageDirectoryOptions& options, const std::shared_ptr<SkippedFiles>& skipped) {
  auto files = std::make_shared<SubsetFiles>();
  files->paths.assign(listing.file_paths.begin() + static_cast<std::ptrdiff_t>(begin),
                      listing.file_paths.begin() + static_cast<std::ptrdiff_t>(end));
  if (!listing.labels.empty()) {
    files->labels.assign(listing.labels.begin() + static_cast<std::ptrdiff_t>(begin),
                         listing.labels.begin() + static_cast<std::ptrdiff_t>(end));
  }
  const LoadImageOptions load{
      .channels = channels_of(options.color_mode),
      .image_size = options.image_size,
      .resize = {.interpolation = options.interpolation,
                 .crop_to_aspect_ratio = options.crop_to_aspect_ratio,
                 .pad_to_aspect_ratio = options.pad_to_aspect_ratio},
  };
  const auto count = static_cast<int64_t>(files->paths.size());
  std::shared_ptr<const SubsetFiles> shared_files = files;

  data::Dataset<Tensor> images = build_pipeline<Tensor>(
      count, shuffle, seed, options,
      [shared_files, load](int64_t index) { return load_image(shared_files->paths[static_cast<size_t>(index)], load); },
      skipped, shared_files);

  std::optional<data::Dataset<LabeledData>> labeled;
  if (options.label_mode == LabelMode::None) {
    // Keras gives images alone; asking this one for labels is a mistake to report, not to guess at.
    labeled = data::from_generator<LabeledData>([]() -> data::Generator<LabeledData> {
      throw ValueError("this image dataset has no labels (label_mode none): iterate its .images dataset instead");
    });
  } else {
    const LabelMode mode = options.label_mode;
    const auto class_count = static_cast<int64_t>(listing.class_names.size());
    labeled = build_pipeline<LabeledData>(
        count, shuffle, seed, options,
        [shared_files, load, mode, class_count](int64_t index) {
          const auto i = static_cast<size_t>(index);
          return LabeledData{load_image(shared_files->paths[i], load), label_tensor(shared_files->labels[i], mode, class_count)};
        },
        skipped, shared_files);
  }
  return ImageDataset(*labeled, images, listing.class_names, files->paths, files->labels, skipped);
}

}  // namespace

// ---- names -----------------------------------------------------------------------------------------

LabelMode label_mode_from_name(std::string_view name) {
  if (name == "int") return LabelMode::Int;
  if (name == "categorical") return LabelMode::Categorical;
  if (name == "binary") return LabelMode::Binary;
  if (name == "none") return LabelMode::None;
  throw ValueError("unknown label_mode '" + std::string(name) + "' (one of \"int\", \"categorical\", \"binary\", \"none\")");
}

ColorMode color_mode_from_name(std::string_view name) {
  if (name == "grayscale") return ColorMode::Grayscale;
  if (name == "rgb") return ColorMode::RGB;
  if (name == "rgba") return ColorMode::RGBA;
  throw ValueError("unknown color_mode '" + std::string(name) + "' (one of \"grayscale\", \"rgb\", \"rgba\")");
}

Subset subset_from_name(std::string_view name) {
  if (name == "training") return Subset::Training;
  if (name == "validation") return Subset::Validation;
  if (name == "both") return Subset::Both;
  throw ValueError("unknown subset '" + std::string(name) + "' (one of \"training\", \"validation\", \"both\")");
}

int channels_of(ColorMode color_mode) {
  switch (color_mode) {
    case ColorMode::Grayscale: return 1;
    case ColorMode::RGBA: return 4;
    case ColorMode::RGB: break;
  }
  return 3;
}

// ---- loading and listing ---------------------------------------------------------------------------

Tensor load_image(const std::string& path, const LoadImageOptions& options) {
  const Tensor decoded = decode_image(read_file(path), {.channels = options.channels, .source = path});
  return resize(decoded, options.image_size, options.resize);
}

void SkippedFiles::add(const std::string& path, const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (std::find(paths_.begin(), paths_.end(), path) != paths_.end()) return;
  paths_.push_back(path);
  std::cerr << "Skipping " << path << ": " << reason << "\n";
}

int64_t SkippedFiles::count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(paths_.size());
}

std::vector<std::string> SkippedFiles::paths() const {
  std::lock_guard lock(mutex_);
  return paths_;
}

ImageFiles index_directory(const std::string& directory, const ImageDirectoryOptions& options, uint64_t seed) {
  const fs::path root(directory);
  ImageFiles listing;
  const bool inferred = !options.labels && options.label_mode != LabelMode::None;
  if (inferred) {
    const std::vector<std::string> folders = class_folders(root);
    if (folders.empty()) {
      const bool images_at_top = !image_files_under(root, false).empty();
      throw FileError("no class folders in " + directory + ": labels are inferred from subfolders, one per class (" +
                      (fs::path(directory) / "<class_name>" / "image.png").string() + ")" +
                      (images_at_top ? "; its images lie directly in it (use label_mode none to read them unlabelled)" : ""));
    }
    listing.class_names = options.class_names.empty() ? folders : options.class_names;
    std::set<std::string> seen;
    for (const std::string& name : listing.class_names) {
      if (!std::binary_search(folders.begin(), folders.end(), name) || !seen.insert(name).second) {
        throw ValueError("the class_names passed did not match the names of the subfolders of " + directory + ". Expected: " +
                         quoted_list(folders) + " (or a subset of it, each once), but received: " +
                         quoted_list(options.class_names));
      }
    }
    for (size_t label = 0; label < listing.class_names.size(); ++label) {
      const fs::path folder = root / listing.class_names[label];
      const std::vector<std::string> paths = image_files_under(folder, options.follow_links);
      if (paths.empty()) {
        throw FileError("the class folder " + folder.string() + " contains no images (allowed formats: " + kAllowedFormats + ")");
      }
      listing.file_paths.insert(listing.file_paths.end(), paths.begin(), paths.end());
      listing.labels.insert(listing.labels.end(), paths.size(), static_cast<int64_t>(label));
    }
  } else {
    listing.file_paths = image_files_under(root, options.follow_links);
    if (options.labels && options.label_mode != LabelMode::None) {
      const std::vector<int64_t>& labels = *options.labels;
      if (labels.size() != listing.file_paths.size()) {
        throw ValueError("expected the number of labels to match the number of image files in the target directory: "
                         "there are " + std::to_string(labels.size()) + " labels but " +
                         std::to_string(listing.file_paths.size()) + " files in " + directory);
      }
      std::set<int64_t> distinct(labels.begin(), labels.end());
      if (!distinct.empty() && *distinct.begin() < 0) throw ValueError("labels must be non-negative, got " + std::to_string(*distinct.begin()));
      for (const int64_t label : distinct) listing.class_names.push_back(std::to_string(label));
      if (options.label_mode != LabelMode::Int && !distinct.empty() &&
          *distinct.rbegin() >= static_cast<int64_t>(distinct.size())) {
        throw ValueError("with label_mode categorical or binary, the labels must be 0 to " +
                         std::to_string(distinct.size() - 1) + " (one per distinct label), got " +
                         std::to_string(*distinct.rbegin()));
      }
      listing.labels = labels;
    }
  }
  if (listing.file_paths.empty()) {
    throw FileError("No images found in directory " + directory + ". Allowed formats: " + kAllowedFormats);
  }

  // An empty file cannot be an image: find them now, not halfway through the first epoch.
  std::vector<size_t> kept;
  for (size_t i = 0; i < listing.file_paths.size(); ++i) {
    std::error_code error;
    if (fs::file_size(listing.file_paths[i], error) == 0 && !error) {
      if (!options.skip_corrupt) {
        throw FileError("the image file " + listing.file_paths[i] + " is empty (0 bytes); remove it, or skip such files with skip_corrupt");
      }
      listing.skipped_paths.push_back(listing.file_paths[i]);
    } else {
      kept.push_back(i);
    }
  }
  if (!listing.skipped_paths.empty()) {
    std::vector<std::string> paths;
    std::vector<int64_t> labels;
    for (size_t i : kept) {
      paths.push_back(listing.file_paths[i]);
      if (!listing.labels.empty()) labels.push_back(listing.labels[i]);
    }
    listing.file_paths = std::move(paths);
    listing.labels = std::move(labels);
    if (listing.file_paths.empty()) throw FileError("every image file in " + directory + " is empty (0 bytes)");
  }

  if (options.verbose) {
    if (options.label_mode == LabelMode::None) {
      std::cout << "Found " << listing.file_paths.size() << " files.\n";
    } else {
      std::cout << "Found " << listing.file_paths.size() << " files belonging to " << listing.class_names.size()
                << " classes.\n";
    }
  }
  if (options.label_mode == LabelMode::None) listing.labels.clear();

  // Shuffle the whole list once, so the split takes a random share of every class.
  if (options.shuffle) {
    Rng rng(seed);
    std::vector<size_t> order(listing.file_paths.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);  // Fisher-Yates
    std::vector<std::string> paths(order.size());
    std::vector<int64_t> labels(listing.labels.empty() ? 0 : order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      paths[i] = std::move(listing.file_paths[order[i]]);
      if (!labels.empty()) labels[i] = listing.labels[order[i]];
    }
    listing.file_paths = std::move(paths);
    listing.labels = std::move(labels);
  }
  return listing;
}

ImageDatasets image_dataset_from_directory(const std::string& directory, const ImageDirectoryOptions& options) {
  check_arguments(options);
  const uint64_t seed = options.seed ? *options.seed : next_seed();
  const ImageFiles listing = index_directory(directory, options, seed);
  if (options.label_mode == LabelMode::Binary && listing.class_names.size() != 2) {
    throw ValueError("with label_mode binary there must be exactly 2 classes, but " + directory + " has " +
                     std::to_string(listing.class_names.size()) + ": " + quoted_list(listing.class_names));
  }
  auto skipped = std::make_shared<SkippedFiles>();
  for (const std::string& path : listing.skipped_paths) skipped->add(path, "the file is empty (0 bytes)");

  // Keras's split: the first 1 - validation_split share of the (shuffled) list trains, the rest validates.
  const size_t total = listing.file_paths.size();
  const auto validation_count = static_cast<size_t>(options.validation_split * static_cast<double>(total));
  const size_t training_count = total - validation_count;
  auto announce = [&](size_t count, const char* subset) {
    if (options.verbose) std::cout << "Using " << count << " files for " << subset << ".\n";
  };
  auto require = [&](size_t count, const char* subset) {
    if (count == 0) {
      throw ValueError(std::string("No ") + subset + " images found in directory " + directory + ": " +
                       std::to_string(total) + " files and a validation_split of " + std::to_string(options.validation_split));
    }
  };
  switch (options.subset) {
    case Subset::All:
      return {make_image_dataset(listing, 0, total, options.shuffle, seed, options, skipped), std::nullopt, listing.class_names};
    case Subset::Training:
      announce(training_count, "training");
      require(training_count, "training");
      return {make_image_dataset(listing, 0, training_count, options.shuffle, seed, options, skipped), std::nullopt,
              listing.class_names};
    case Subset::Validation:
      announce(validation_count, "validation");
      require(validation_count, "validation");
      return {make_image_dataset(listing, training_count, total, options.shuffle, seed, options, skipped), std::nullopt,
              listing.class_names};
    case Subset::Both:
      announce(training_count, "training");
      announce(validation_count, "validation");
      require(training_count, "training");
      require(validation_count, "validation");
      // As in Keras, the validation subset is not reshuffled each epoch.
      return {make_image_dataset(listing, 0, training_count, options.shuffle, seed, options, skipped),
              make_image_dataset(listing, training_count, total, false, seed, options, skipped), listing.class_names};
  }
  throw ValueError("image_dataset_from_directory: unknown subset");
}

}  // namespace kiln::image
