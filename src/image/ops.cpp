// Image ops: stb_image decodes and encodes; resizing, flips, brightness, contrast and crops are
// plain loops over [height, width, channels] pixels.
//
// stb_image is used only through stbi_load_from_memory and the *_to_func writers, which touch no
// global state that we change (no stbi_set_flip_vertically_on_load and the like), so worker
// threads may decode at once. Error messages come from our own checks, not stbi_failure_reason(),
// whose thread safety depends on how the library was compiled.
#include "kiln/image/ops.hpp"

#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/random.hpp"

#include <fcntl.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

namespace kiln::image {

namespace {

// ---- shapes ----------------------------------------------------------------------------------------

// One image or a batch, seen as `count` images of height x width x channels.
struct ImagesView {
  int64_t count, height, width, channels;
  int64_t image_size() const { return height * width * channels; }
};

ImagesView view_of(const Tensor& images, const char* op) {
  if (images.rank() == 3) return {1, images.dim(0), images.dim(1), images.dim(2)};
  if (images.rank() == 4) return {images.dim(0), images.dim(1), images.dim(2), images.dim(3)};
  throw ShapeError(std::string(op) + " expects an image [height, width, channels] or a batch [batch, height, width, "
                   "channels], got shape " + images.shape().str() +
                   (images.rank() == 2 ? " (a grey image needs a channels axis of 1: [height, width, 1])" : ""));
}

// The output shape for images of a new height and width, keeping the input's rank.
Shape images_shape(const Tensor& like, int64_t count, int64_t height, int64_t width, int64_t channels) {
  if (like.rank() == 3) return Shape{height, width, channels};
  return Shape{count, height, width, channels};
}

// Image i's own random stream (see the header): independent of the batch size and of the other images.
Rng image_rng(uint64_t seed, int64_t image_index) { return Rng(mix64(seed ^ mix64(static_cast<uint64_t>(image_index)))); }

// ---- file formats ----------------------------------------------------------------------------------

enum class Format { Unknown, Png, Jpeg, Gif, Bmp };

const char* format_name(Format format) {
  switch (format) {
    case Format::Png: return "PNG";
    case Format::Jpeg: return "JPEG";
    case Format::Gif: return "GIF";
    case Format::Bmp: return "BMP";
    case Format::Unknown: break;
  }
  return "unknown";
}

bool starts_with(std::span<const uint8_t> bytes, std::initializer_list<uint8_t> prefix) {
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

// Told apart by the signature every file of the format starts with, as tf.image.decode_image does.
Format detect_format(std::span<const uint8_t> bytes) {
  if (starts_with(bytes, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return Format::Png;
  if (starts_with(bytes, {0xFF, 0xD8, 0xFF})) return Format::Jpeg;
  if (starts_with(bytes, {'G', 'I', 'F', '8', '7', 'a'}) || starts_with(bytes, {'G', 'I', 'F', '8', '9', 'a'})) return Format::Gif;
  if (starts_with(bytes, {'B', 'M'})) return Format::Bmp;
  return Format::Unknown;
}

std::string first_bytes_hex(std::span<const uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    if (i) text += ' ';
    text += digits[bytes[i] >> 4];
    text += digits[bytes[i] & 15];
  }
  return text;
}

// stb_image reads past the end of a truncated JPEG or BMP as zeros instead of failing, so those
// two get a check of their own: a JPEG ends with the end-of-image marker FF D9, and a BMP's header
// states the file's size.
bool looks_truncated(Format format, std::span<const uint8_t> bytes) {
  if (format == Format::Jpeg) {
    for (size_t i = bytes.size() - 1; i >= 3; --i) {
      if (bytes[i - 1] == 0xFF && bytes[i] == 0xD9) return false;
    }
    return true;
  }
  if (format == Format::Bmp && bytes.size() >= 6) {
    const uint32_t declared = bytes[2] | (bytes[3] << 8) | (bytes[4] << 16) | (static_cast<uint32_t>(bytes[5]) << 24);
    return declared > bytes.size();  // 0 (allowed by the format) means "not stated"
  }
  return false;
}

uint8_t to_byte(float value) { return static_cast<uint8_t>(std::clamp(std::lround(value), 0L, 255L)); }

std::string lowercase_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension;
}

// ---- resizing --------------------------------------------------------------------------------------

// Where output row (or column) `dst` samples the input, for bilinear interpolation (see the header).
struct Sample {
  int64_t lower, upper;
  float t;  // weight of `upper`
};

std::vector<Sample> bilinear_samples(int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<Sample> samples(static_cast<size_t>(out_size));
  for (int64_t dst = 0; dst < out_size; ++dst) {
    const float src = (static_cast<float>(dst) + 0.5f) * scale - 0.5f;
    const float floor_src = std::floor(src);
    samples[static_cast<size_t>(dst)] = {std::max(static_cast<int64_t>(floor_src), int64_t{0}),
                                         std::min(static_cast<int64_t>(std::ceil(src)), in_size - 1), src - floor_src};
  }
  return samples;
}

std::vector<int64_t> nearest_samples(int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<int64_t> samples(static_cast<size_t>(out_size));
  for (int64_t dst = 0; dst < out_size; ++dst) {
    samples[static_cast<size_t>(dst)] =
        std::min(static_cast<int64_t>(std::floor((static_cast<float>(dst) + 0.5f) * scale)), in_size - 1);
  }
  return samples;
}

// Resizes one image of `in` (height x width x channels, row-major) into `out` (out_h x out_w x channels).
void resize_one(const float* in, int64_t height, int64_t width, int64_t channels, float* out, int64_t out_height,
                int64_t out_width, Interpolation interpolation) {
  if (out_height == height && out_width == width) {  // both methods sample every pixel exactly
    std::memcpy(out, in, sizeof(float) * static_cast<size_t>(height * width * channels));
    return;
  }
  if (interpolation == Interpolation::Nearest) {
    const std::vector<int64_t> rows = nearest_samples(height, out_height), columns = nearest_samples(width, out_width);
    for (int64_t y = 0; y < out_height; ++y) {
      for (int64_t x = 0; x < out_width; ++x) {
        const float* source = in + (rows[static_cast<size_t>(y)] * width + columns[static_cast<size_t>(x)]) * channels;
        std::copy(source, source + channels, out + (y * out_width + x) * channels);
      }
    }
    return;
  }
  const std::vector<Sample> rows = bilinear_samples(height, out_height), columns = bilinear_samples(width, out_width);
  for (int64_t y = 0; y < out_height; ++y) {
    const Sample& row = rows[static_cast<size_t>(y)];
    const float* top_row = in + row.lower * width * channels;
    const float* bottom_row = in + row.upper * width * channels;
    for (int64_t x = 0; x < out_width; ++x) {
      const Sample& column = columns[static_cast<size_t>(x)];
      for (int64_t c = 0; c < channels; ++c) {
        const float top_left = top_row[column.lower * channels + c], top_right = top_row[column.upper * channels + c];
        const float bottom_left = bottom_row[column.lower * channels + c];
        const float bottom_right = bottom_row[column.upper * channels + c];
        const float top = top_left + (top_right - top_left) * column.t;
        const float bottom = bottom_left + (bottom_right - bottom_left) * column.t;
        out[(y * out_width + x) * channels + c] = top + (bottom - top) * row.t;
      }
    }
  }
}

// Copies rows [top, top + height) and columns [left, left + width) of one image.
void crop_one(const float* in, int64_t in_width, int64_t channels, int64_t top, int64_t left, int64_t height,
              int64_t width, float* out) {
  for (int64_t y = 0; y < height; ++y) {
    const float* source = in + ((top + y) * in_width + left) * channels;
    std::copy(source, source + width * channels, out + y * width * channels);
  }
}

void check_size(ImageSize size, const char* op) {
  if (size.height < 1 || size.width < 1) {
    throw ValueError(std::string(op) + ": the size must be at least 1x1, got " + std::to_string(size.height) + "x" +
                     std::to_string(size.width));
  }
}

}  // namespace

// ---- reading, decoding, saving -------------------------------------------------------------------

// POSIX calls rather than std::ifstream and std::filesystem: one open, one fstat, the reads and a
// close. For a small image that is half the syscalls, and reading the file is about half the cost
// of loading a 28x28 PNG.
std::vector<uint8_t> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError("cannot read " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) throw FileError("cannot read " + path + ": " + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw FileError("cannot read " + path + ": it is a folder, not a file");
  std::vector<uint8_t> bytes(static_cast<size_t>(std::max<off_t>(info.st_size, 0)));
  size_t filled = 0;
  while (true) {
    if (filled == bytes.size()) bytes.resize(std::max<size_t>(2 * bytes.size(), 4096));  // the file grew, or has no size
    const ssize_t got = ::read(fd, bytes.data() + filled, bytes.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw FileError("error while reading " + path + ": " + std::strerror(errno));
    if (got == 0) break;
    filled += static_cast<size_t>(got);
    if (filled == static_cast<size_t>(info.st_size)) break;  // all of it: no read just to see the end
  }
  bytes.resize(filled);
  return bytes;
}

namespace {
}  // namespace

Tensor decode_image(std::span<const uint8_t> bytes, const DecodeOptions& options) {
  if (options.channels < 0 || options.channels > 4) {
    throw ValueError("decode_image: channels must be 0 (as stored), 1, 2, 3 or 4, got " + std::to_string(options.channels));
  }
  const std::string& source = options.source;
  if (bytes.empty()) throw FileError("cannot decode " + source + ": it is empty (0 bytes), not an image");
  const Format format = detect_format(bytes);
  if (format == Format::Unknown) {
    throw FileError("cannot decode " + source + ": not a PNG, JPEG, GIF or BMP image (its first bytes are " +
                    first_bytes_hex(bytes) + ")");
  }
  if (bytes.size() > static_cast<size_t>(INT_MAX)) throw FileError("cannot decode " + source + ": larger than 2 GB");
  if (looks_truncated(format, bytes)) {
    throw FileError("cannot decode " + source + ": the " + format_name(format) + " data is truncated");
  }
  int width = 0, height = 0, stored_channels = 0;
  // The header's size, checked before stb allocates for it: a few hundred bytes of PNG can
  // declare a 15000x15000 image (a decompression bomb). PIL, behind Keras's image loading, refuses
  // images over twice its MAX_IMAGE_PIXELS; so does kiln, unless told a lower limit.
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &stored_channels) &&
      int64_t{width} * height > options.max_pixels) {
    throw FileError("cannot decode " + source + ": it declares " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, more than the " + std::to_string(options.max_pixels) + " kiln decodes (a decompression bomb?)");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &stored_channels, options.channels),
      stbi_image_free);
  if (!pixels) {
    throw FileError("cannot decode " + source + ": the " + format_name(format) + " data is corrupt or truncated");
  }
  const int channels = options.channels ? options.channels : stored_channels;
  Tensor image(Shape{height, width, channels});
  float* out = image.data();
  const stbi_uc* in = pixels.get();
  for (int64_t i = 0; i < image.size(); ++i) out[i] = static_cast<float>(in[i]);
  return image;
}

void save_image(const std::string& path, const Tensor& image, int jpeg_quality) {
  if (image.rank() != 3 || image.dim(2) < 1 || image.dim(2) > 4 || image.dim(0) < 1 || image.dim(1) < 1) {
    throw ShapeError("save_image expects one image [height, width, channels] with 1 to 4 channels, got shape " +
                     image.shape().str() + " for " + path);
  }
  if (jpeg_quality < 1 || jpeg_quality > 100) {
    throw ValueError("save_image: jpeg_quality must be 1-100, got " + std::to_string(jpeg_quality));
  }
  const int height = static_cast<int>(image.dim(0)), width = static_cast<int>(image.dim(1));
  const int channels = static_cast<int>(image.dim(2));
  std::vector<uint8_t> pixels(static_cast<size_t>(image.size()));
  for (int64_t i = 0; i < image.size(); ++i) pixels[static_cast<size_t>(i)] = to_byte(image[i]);

  // Encode in memory, then write the file ourselves, so a failed write says why.
  std::vector<uint8_t> encoded;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  const std::string extension = lowercase_extension(path);
  int ok = 0;
  if (extension == ".png") {
    ok = stbi_write_png_to_func(append, &encoded, width, height, channels, pixels.data(), width * channels);
  } else if (extension == ".jpg" || extension == ".jpeg") {
    ok = stbi_write_jpg_to_func(append, &encoded, width, height, channels, pixels.data(), jpeg_quality);
  } else if (extension == ".bmp") {
    ok = stbi_write_bmp_to_func(append, &encoded, width, height, channels, pixels.data());
  } else {
    throw ValueError("save_image: cannot tell the format of " + path + " (use .png, .jpg, .jpeg or .bmp)");
  }
  if (!ok) throw FileError("save_image: could not encode " + path);
  io::AtomicFile out(path);
  out.write(encoded.data(), encoded.size());
  out.commit();
}

// ---- resizing ------------------------------------------------------------------------------------

Interpolation interpolation_from_name(std::string_view name) {
  if (name == "bilinear") return Interpolation::Bilinear;
  if (name == "nearest") return Interpolation::Nearest;
  throw ValueError("unknown interpolation '" + std::string(name) + "' (kiln has \"bilinear\" and \"nearest\")");
}

std::string_view interpolation_name(Interpolation interpolation) {
  return interpolation == Interpolation::Nearest ? "nearest" : "bilinear";
}

Tensor resize(const Tensor& images, ImageSize size, const ResizeOptions& options) {
  const ImagesView in = view_of(images, "resize");
  check_size(size, "resize");
  if (options.crop_to_aspect_ratio && options.pad_to_aspect_ratio) {
    throw ValueError("resize: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be set");
  }
  if (in.height < 1 || in.width < 1) throw ValueError("resize: the image is empty (" + images.shape().str() + ")");
  Tensor out(images_shape(images, in.count, size.height, size.width, in.channels));
  const int64_t out_image_size = size.height * size.width * in.channels;

  if (options.crop_to_aspect_ratio) {
    const int64_t crop_height = std::min(in.height, in.width * size.height / size.width);
    const int64_t crop_width = std::min(in.width, in.height * size.width / size.height);
    const int64_t top = (in.height - crop_height) / 2, left = (in.width - crop_width) / 2;
    std::vector<float> cropped(static_cast<size_t>(std::max<int64_t>(crop_height, 1) * std::max<int64_t>(crop_width, 1) * in.channels));
    for (int64_t i = 0; i < in.count; ++i) {
      // A window of zero rows or columns (an image far thinner than the target) keeps one.
      const int64_t h = std::max<int64_t>(crop_height, 1), w = std::max<int64_t>(crop_width, 1);
      crop_one(images.data() + i * in.image_size(), in.width, in.channels, std::min(top, in.height - h),
               std::min(left, in.width - w), h, w, cropped.data());
      resize_one(cropped.data(), h, w, in.channels, out.data() + i * out_image_size, size.height, size.width,
                 options.interpolation);
    }
    return out;
  }
  if (options.pad_to_aspect_ratio) {
    const double ratio = std::max(static_cast<double>(in.width) / static_cast<double>(size.width),
                                  static_cast<double>(in.height) / static_cast<double>(size.height));
    const double scaled_height = static_cast<double>(in.height) / ratio, scaled_width = static_cast<double>(in.width) / ratio;
    const int64_t inner_height = std::clamp<int64_t>(static_cast<int64_t>(std::floor(scaled_height)), 1, size.height);
    const int64_t inner_width = std::clamp<int64_t>(static_cast<int64_t>(std::floor(scaled_width)), 1, size.width);
    const int64_t top = std::clamp<int64_t>(static_cast<int64_t>(std::floor((static_cast<double>(size.height) - scaled_height) / 2)), 0,
                                            size.height - inner_height);
    const int64_t left = std::clamp<int64_t>(static_cast<int64_t>(std::floor((static_cast<double>(size.width) - scaled_width) / 2)), 0,
                                             size.width - inner_width);
    std::vector<float> inner(static_cast<size_t>(inner_height * inner_width * in.channels));
    for (int64_t i = 0; i < in.count; ++i) {
      resize_one(images.data() + i * in.image_size(), in.height, in.width, in.channels, inner.data(), inner_height,
                 inner_width, options.interpolation);
      float* canvas = out.data() + i * out_image_size;  // zeros already
      for (int64_t y = 0; y < inner_height; ++y) {
        std::copy(inner.data() + y * inner_width * in.channels, inner.data() + (y + 1) * inner_width * in.channels,
                  canvas + ((top + y) * size.width + left) * in.channels);
      }
    }
    return out;
  }
  for (int64_t i = 0; i < in.count; ++i) {
    resize_one(images.data() + i * in.image_size(), in.height, in.width, in.channels, out.data() + i * out_image_size,
               size.height, size.width, options.interpolation);
  }
  return out;
}

// ---- pixel arithmetic and geometry ---------------------------------------------------------------

Tensor rescale(const Tensor& images, float scale, float offset) {
  Tensor out(images.shape());
  for (int64_t i = 0; i < images.size(); ++i) out[i] = images[i] * scale + offset;
  return out;
}

namespace {
// Mirrors one image (height x width x channels) from `in` into `out`.
void flip_left_right_one(const float* in, int64_t height, int64_t width, int64_t channels, float* out) {
  for (int64_t y = 0; y < height; ++y) {
    const float* source = in + y * width * channels;
    float* target = out + y * width * channels;
    for (int64_t x = 0; x < width; ++x) {
      std::copy(source + x * channels, source + (x + 1) * channels, target + (width - 1 - x) * channels);
    }
  }
}

void flip_up_down_one(const float* in, int64_t height, int64_t width, int64_t channels, float* out) {
  const int64_t row_size = width * channels;
  for (int64_t y = 0; y < height; ++y) {
    std::copy(in + y * row_size, in + (y + 1) * row_size, out + (height - 1 - y) * row_size);
  }
}

using FlipOne = void (*)(const float*, int64_t, int64_t, int64_t, float*);

// Flips every image, or (with a seed) each image whose coin, drawn from its own stream, comes up heads.
Tensor flip(const Tensor& images, const char* op, FlipOne flip_one, std::optional<uint64_t> seed = std::nullopt) {
  const ImagesView in = view_of(images, op);
  Tensor out(images.shape());
  for (int64_t i = 0; i < in.count; ++i) {
    const float* source = images.data() + i * in.image_size();
    float* target = out.data() + i * in.image_size();
    if (!seed || image_rng(*seed, i).uniform(0.0f, 1.0f) < 0.5f) {
      flip_one(source, in.height, in.width, in.channels, target);
    } else {
      std::copy(source, source + in.image_size(), target);
    }
  }
  return out;
}
}  // namespace

Tensor flip_left_right(const Tensor& images) { return flip(images, "flip_left_right", flip_left_right_one); }
Tensor flip_up_down(const Tensor& images) { return flip(images, "flip_up_down", flip_up_down_one); }

Tensor adjust_brightness(const Tensor& images, float delta) {
  view_of(images, "adjust_brightness");
  return rescale(images, 1.0f, delta);
}

namespace {
// (x - m) * factor + m per channel of one image, m the channel's mean (in double, so a large
// image's sum keeps its precision).
void adjust_contrast_one(const float* in, int64_t pixels, int64_t channels, float factor, float* out) {
  std::vector<double> sums(static_cast<size_t>(channels), 0.0);
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t c = 0; c < channels; ++c) sums[static_cast<size_t>(c)] += in[p * channels + c];
  }
  std::vector<float> means(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) means[static_cast<size_t>(c)] = static_cast<float>(sums[static_cast<size_t>(c)] / static_cast<double>(pixels));
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t c = 0; c < channels; ++c) {
      const float mean = means[static_cast<size_t>(c)];
      out[p * channels + c] = (in[p * channels + c] - mean) * factor + mean;
    }
  }
}
}  // namespace

Tensor adjust_contrast(const Tensor& images, float factor) {
  const ImagesView in = view_of(images, "adjust_contrast");
  Tensor out(images.shape());
  for (int64_t i = 0; i < in.count; ++i) {
    adjust_contrast_one(images.data() + i * in.image_size(), in.height * in.width, in.channels, factor,
                        out.data() + i * in.image_size());
  }
  return out;
}

Tensor crop_to_bounding_box(const Tensor& images, int64_t top, int64_t left, int64_t height, int64_t width) {
  const ImagesView in = view_of(images, "crop_to_bounding_box");
  if (top < 0 || left < 0 || height < 1 || width < 1 || top + height > in.height || left + width > in.width) {
    throw ValueError("crop_to_bounding_box: the box at (top " + std::to_string(top) + ", left " + std::to_string(left) +
                     ") of " + std::to_string(height) + "x" + std::to_string(width) + " does not fit inside a " +
                     std::to_string(in.height) + "x" + std::to_string(in.width) + " image");
  }
  Tensor out(images_shape(images, in.count, height, width, in.channels));
  for (int64_t i = 0; i < in.count; ++i) {
    crop_one(images.data() + i * in.image_size(), in.width, in.channels, top, left, height, width,
             out.data() + i * height * width * in.channels);
  }
  return out;
}

// ---- random ops ----------------------------------------------------------------------------------

Tensor random_flip_left_right(const Tensor& images, uint64_t seed) {
  return flip(images, "random_flip_left_right", flip_left_right_one, seed);
}

Tensor random_flip_up_down(const Tensor& images, uint64_t seed) {
  return flip(images, "random_flip_up_down", flip_up_down_one, seed);
}

Tensor random_brightness(const Tensor& images, float max_delta, uint64_t seed) {
  if (!(max_delta >= 0.0f)) throw ValueError("random_brightness: max_delta must be non-negative, got " + std::to_string(max_delta));
  const ImagesView in = view_of(images, "random_brightness");
  Tensor out(images.shape());
  for (int64_t i = 0; i < in.count; ++i) {
    Rng rng = image_rng(seed, i);
    const float delta = rng.uniform(-max_delta, max_delta);
    const float* source = images.data() + i * in.image_size();
    float* target = out.data() + i * in.image_size();
    for (int64_t k = 0; k < in.image_size(); ++k) target[k] = source[k] + delta;
  }
  return out;
}

Tensor random_contrast(const Tensor& images, float lower, float upper, uint64_t seed) {
  if (!(lower >= 0.0f)) throw ValueError("random_contrast: lower must be non-negative, got " + std::to_string(lower));
  if (!(upper > lower)) {
    throw ValueError("random_contrast: upper must be greater than lower, got lower " + std::to_string(lower) + " and upper " +
                     std::to_string(upper));
  }
  const ImagesView in = view_of(images, "random_contrast");
  Tensor out(images.shape());
  for (int64_t i = 0; i < in.count; ++i) {
    Rng rng = image_rng(seed, i);
    adjust_contrast_one(images.data() + i * in.image_size(), in.height * in.width, in.channels, rng.uniform(lower, upper),
                        out.data() + i * in.image_size());
  }
  return out;
}

Tensor random_crop(const Tensor& images, ImageSize size, uint64_t seed) {
  const ImagesView in = view_of(images, "random_crop");
  check_size(size, "random_crop");
  if (size.height > in.height || size.width > in.width) {
    throw ValueError("random_crop: a " + std::to_string(size.height) + "x" + std::to_string(size.width) +
                     " window does not fit inside a " + std::to_string(in.height) + "x" + std::to_string(in.width) + " image");
  }
  Tensor out(images_shape(images, in.count, size.height, size.width, in.channels));
  for (int64_t i = 0; i < in.count; ++i) {
    Rng rng = image_rng(seed, i);
    const auto top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(in.height - size.height + 1)));
    const auto left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(in.width - size.width + 1)));
    crop_one(images.data() + i * in.image_size(), in.width, in.channels, top, left, size.height, size.width,
             out.data() + i * size.height * size.width * in.channels);
  }
  return out;
}

}  // namespace kiln::image
