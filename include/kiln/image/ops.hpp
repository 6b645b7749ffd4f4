// kiln/image/ops.hpp — images as tensors, and the ops a pipeline's map applies to them: read a
// file, decode it, resize, rescale, flip, change brightness or contrast, crop; and save one.
//
// An image is a kiln::Tensor [height, width, channels] of float32 pixels on the 0-255 scale
// (channels 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA): what decode_image gives, and what Keras's
// image_dataset_from_directory yields. A batch is [batch, height, width, channels]. Every op
// returns a new tensor and leaves its input alone; ops that take "images" accept one image or a
// batch and treat each image of a batch on its own. Decoding is stb_image's (PNG, JPEG, BMP, GIF).
// Left out on purpose: other formats (WebP, TIFF), animation frames after a GIF's first, resizing
// methods other than bilinear and nearest, antialiasing, and channels-first layouts.
// No global state: any thread may call any of these at the same time, as a parallel map does.
//
// Randomness is stateless, like tf.image.stateless_random_*: a random op's result is a function
// of (images, seed) alone. Image i of a batch draws from its own stream, Rng(mix64(seed ^
// mix64(i))), so one image gives what image 0 of a batch with the same seed gives. In a pipeline,
// give each element its own seed with zip(..., data::random(seed)): the same seeds in a serial or
// a parallel map, a new set each epoch, and in a fit resumed at epoch k the ones the uninterrupted
// run drew (a shared Rng called from the map would restart instead).
//
// Intended usage, in a map:
//   data::zip(batches, data::random(42)).map([](std::pair<LabeledData, uint64_t> batch_and_seed) {
//     auto& [batch, seed] = batch_and_seed;
//     batch.x = image::random_flip_left_right(batch.x, seed);
//     batch.x = image::random_brightness(batch.x, /*max_delta=*/25.5f, mix64(seed + 1));
//     return std::move(batch);
//   });
#pragma once

#include "kiln/tensor.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::image {

// A height and a width, in pixels.
struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
  friend bool operator==(const ImageSize&, const ImageSize&) = default;
};

// ---- reading, decoding, saving -------------------------------------------------------------------

// The bytes of a file, as tf.io.read_file gives them. A missing, unreadable file or a folder is a
// FileError naming the path.
std::vector<uint8_t> read_file(const std::string& path);

// The most pixels a header may declare: PIL's DecompressionBombError threshold (twice its
// MAX_IMAGE_PIXELS), which Keras's image loading inherits. A few hundred bytes can declare more.
inline constexpr int64_t kMaxImagePixels = 2 * 89'478'485;

struct DecodeOptions {
  // 0 keeps the file's own channels; 1, 3 or 4 converts to grey, RGB or RGBA (tf.image's rule).
  // Grey from colour is stb's luma, (77 R + 150 G + 29 B) / 256; an added alpha channel is 255.
  int channels = 0;
  // What the bytes are, for error messages: usually the file's path.
  std::string source = "image data";
  // Larger declared sizes are refused before decoding (as PIL's MAX_IMAGE_PIXELS can be lowered).
  int64_t max_pixels = kMaxImagePixels;
};

// tf.image.decode_image: PNG (8 or 16 bits, 16 reduced to 8), JPEG (baseline and progressive),
// BMP or GIF (its first frame), told apart by their first bytes, not by a file name. Returns
// [height, width, channels] float32 pixels 0-255. Empty, unknown, corrupt or truncated data is
// a FileError naming options.source.
Tensor decode_image(std::span<const uint8_t> bytes, const DecodeOptions& options = {});

// Writes one image [height, width, channels] (1 to 4 channels) as PNG, JPEG or BMP, chosen by the
// path's extension (.png, .jpg / .jpeg, .bmp, any case). Pixels are rounded and clamped to 0-255.
// jpeg_quality is 1-100. Keras's keras.utils.save_img.
void save_image(const std::string& path, const Tensor& image, int jpeg_quality = 95);

// ---- resizing ------------------------------------------------------------------------------------

enum class Interpolation { Bilinear, Nearest };

// "bilinear" / "nearest", Keras's names; any other name is a ValueError listing these.
Interpolation interpolation_from_name(std::string_view name);
std::string_view interpolation_name(Interpolation interpolation);

struct ResizeOptions {
  Interpolation interpolation = Interpolation::Bilinear;
  // Keras's smart_resize: crop the largest centred window with the target's aspect ratio first:
  //   crop_height = min(height, floor(width * target_height / target_width))
  //   crop_width  = min(width, floor(height * target_width / target_height))
  //   top = floor((height - crop_height) / 2), left = floor((width - crop_width) / 2)
  bool crop_to_aspect_ratio = false;
  // tf.image.resize_with_pad: scale to fit inside the target keeping the aspect ratio, then pad
  // with zeros, centred: ratio = max(width / target_width, height / target_height), the scaled
  // image is floor(height / ratio) x floor(width / ratio), top = floor((target_height - height /
  // ratio) / 2), left likewise. At most one of the two may be set.
  bool pad_to_aspect_ratio = false;
};

// tf.image.resize with antialias off: every output pixel samples the input at the position its
// centre maps to (half-pixel centres). With scale = input size / output size along an axis:
//   bilinear: src = (dst + 0.5) * scale - 0.5; lower = max(floor(src), 0),
//             upper = min(ceil(src), size - 1), t = src - floor(src);
//             value = top + (bottom - top) * t_y, where top and bottom are the row
//             interpolations left + (right - left) * t_x (a border pixel repeats outward).
//   nearest:  src = min(floor((dst + 0.5) * scale), size - 1).
// Resizing to the same size returns the pixels unchanged, for both methods.
Tensor resize(const Tensor& images, ImageSize size, const ResizeOptions& options = {});

// ---- pixel arithmetic and geometry ---------------------------------------------------------------

// x * scale + offset, element-wise: rescale(images, 1 / 255.f) maps 0-255 to [0, 1]; (1 / 127.5,
// -1) maps it to [-1, 1]. The layers::Rescaling layer does the same inside a model.
Tensor rescale(const Tensor& images, float scale, float offset = 0.0f);

// Mirror each image: columns reversed (left-right) or rows reversed (up-down).
Tensor flip_left_right(const Tensor& images);
Tensor flip_up_down(const Tensor& images);

// tf.image.adjust_brightness: x + delta, every pixel and channel, not clipped. delta is on the
// 0-255 scale (25.5 is a tenth of the range).
Tensor adjust_brightness(const Tensor& images, float delta);

// tf.image.adjust_contrast: for each image and channel, with m the channel's mean over the image,
// x -> (x - m) * factor + m. factor 1 leaves the image alone, 0 makes every channel flat, 2
// doubles each pixel's distance from the mean. Not clipped.
Tensor adjust_contrast(const Tensor& images, float factor);

// tf.image.crop_to_bounding_box: rows [top, top + height) and columns [left, left + width) of
// each image. The box must lie inside the image (ValueError otherwise).
Tensor crop_to_bounding_box(const Tensor& images, int64_t top, int64_t left, int64_t height, int64_t width);

// ---- random ops: each draws per image from (seed, the image's index in the batch) --------------

// Flip with probability 1/2.
Tensor random_flip_left_right(const Tensor& images, uint64_t seed);
Tensor random_flip_up_down(const Tensor& images, uint64_t seed);

// adjust_brightness by a delta drawn uniformly from [-max_delta, max_delta), 0-255 scale.
Tensor random_brightness(const Tensor& images, float max_delta, uint64_t seed);

// adjust_contrast by a factor drawn uniformly from [lower, upper); 0 <= lower < upper.
Tensor random_contrast(const Tensor& images, float lower, float upper, uint64_t seed);

// A size.height x size.width window at a uniformly random position (every position that fits
// equally likely), as tf.image.random_crop. The window must fit inside the image.
Tensor random_crop(const Tensor& images, ImageSize size, uint64_t seed);

}  // namespace kiln::image
