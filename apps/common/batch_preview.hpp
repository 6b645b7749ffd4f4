// apps/common/batch_preview.hpp — one batch of images laid out as a grid of tiles, each captioned
// with its class name: what kiln-images --preview writes, so a user can look at the images
// training gets (augmented, resized, in colour or grey) before training on them.
//
// batch_preview() only draws, into a Tensor [height, width, channels] on the 0-255 scale; writing
// the file is image::save_image's job (stb_image_write, through an AtomicFile). Tiles keep the
// batch's pixel values unchanged, even outside 0-255 (brightness augmentation is not clipped):
// the PNG encoder clamps them. Captions use the 5x7 font of tiny_font.hpp, so they are ASCII;
// each other character is drawn as '?'.
#pragma once

#include "tiny_font.hpp"

#include <kiln/error.hpp>
#include <kiln/image/ops.hpp>
#include <kiln/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln::apps {

struct BatchPreviewOptions {
  int64_t columns = 8;    // tiles per row, at most
  int64_t max_tiles = 64;  // a larger batch shows its first max_tiles images
  // Small images are scaled up by a whole factor (each pixel a square block, no smoothing) until a
  // tile is at least this wide, so that a caption of ten characters fits under a 28x28 image.
  int64_t min_tile_width = 64;
  int64_t gap = 4;  // pixels between tiles and around the edge
  // The pixel value that is white: 255 for the pipeline's 0-255 pixels, 1 for images rescaled to [0, 1].
  float white = 255.0f;
};

// Where everything is in a preview image. Tile i is in row i / columns, column i % columns.
struct BatchPreviewLayout {
  int64_t tiles = 0, columns = 0, rows = 0;
  int64_t scale = 1;                       // each image pixel is a scale x scale block
  int64_t tile_height = 0, tile_width = 0;  // an image after scaling
  int64_t caption_height = 0;               // the strip under each tile that holds its caption
  int64_t gap = 0;
  int64_t height = 0, width = 0, channels = 0;  // the whole preview

  int64_t tile_top(int64_t tile) const { return gap + (tile / columns) * (tile_height + caption_height + gap); }
  int64_t tile_left(int64_t tile) const { return gap + (tile % columns) * (tile_width + gap); }
  int64_t caption_top(int64_t tile) const { return tile_top(tile) + tile_height; }
  // Characters of a caption that fit under a tile; longer captions are cut to this many.
  int64_t caption_characters() const { return (tile_width + 1) / tiny_font::kAdvance; }
};

struct BatchPreview {
  Tensor image;  // [height, width, channels], 0-255
  BatchPreviewLayout layout;
};

namespace batch_preview_detail {

// The background (gaps and caption strips) is dark grey rather than black, so that tiles with
// black backgrounds (MNIST's) still show where they end; captions are white on it.
constexpr float kBackground = 48.0f, kInk = 255.0f, kOpaque = 255.0f;
constexpr int64_t kCaptionPaddingAbove = 2, kCaptionPaddingBelow = 1;
// 2^27 floats is half a gigabyte: a preview larger than that comes from images far larger than
// anyone needs to look at in a grid.
constexpr int64_t kMaxValues = int64_t{1} << 27;

// Colour channels, as opposed to alpha: grey+alpha and RGBA images end with their alpha channel.
inline int64_t colour_channels(int64_t channels) { return channels == 2 || channels == 4 ? channels - 1 : channels; }

// What the font can draw of `text`: printable ASCII as it is, any other character (a control
// character, or one UTF-8 sequence, such as a class folder named "café") as one '?'.
inline std::string drawable(const std::string& text) {
  std::string shown;
  for (const char character : text) {
    const auto byte = static_cast<unsigned char>(character);
    if (byte >= 0x80 && byte < 0xC0) continue;  // a UTF-8 continuation byte: its lead byte gave the '?'
    shown += byte >= static_cast<unsigned char>(tiny_font::kFirst) && byte <= static_cast<unsigned char>(tiny_font::kLast) ? character : '?';
  }
  return shown;
}

}  // namespace batch_preview_detail

// The layout batch_preview() draws for a batch of this shape, [batch, height, width, channels].
// Throws ShapeError for anything else, ValueError for an empty batch or bad options.
inline BatchPreviewLayout batch_preview_layout(const Shape& batch_shape, const BatchPreviewOptions& options = {}) {
  using namespace batch_preview_detail;
  if (batch_shape.rank() != 4 || batch_shape[1] < 1 || batch_shape[2] < 1 || batch_shape[3] < 1 || batch_shape[3] > 4) {
    throw ShapeError("a batch preview needs images [batch, height, width, channels] with 1 to 4 channels, got " + batch_shape.str());
  }
  if (batch_shape[0] < 1) throw ValueError("a batch preview needs at least one image, the batch is empty");
  if (options.columns < 1 || options.max_tiles < 1 || options.min_tile_width < 1 || options.gap < 0 || !(options.white > 0.0f)) {
    throw ValueError("BatchPreviewOptions: columns, max_tiles and min_tile_width must be at least 1, gap at least 0, white above 0");
  }
  BatchPreviewLayout layout;
  layout.tiles = std::min(batch_shape[0], options.max_tiles);
  layout.columns = std::min(layout.tiles, options.columns);
  layout.rows = (layout.tiles + layout.columns - 1) / layout.columns;
  layout.scale = std::max<int64_t>(1, (options.min_tile_width + batch_shape[2] - 1) / batch_shape[2]);
  layout.tile_height = batch_shape[1] * layout.scale;
  layout.tile_width = batch_shape[2] * layout.scale;
  layout.caption_height = kCaptionPaddingAbove + tiny_font::kGlyphHeight + kCaptionPaddingBelow;
  layout.gap = options.gap;
  layout.channels = batch_shape[3];
  // Checked one factor at a time, so that no product can overflow before it is compared.
  const double values = static_cast<double>(options.gap + layout.columns * (layout.tile_width + options.gap)) *
                        static_cast<double>(options.gap + layout.rows * (layout.tile_height + layout.caption_height + options.gap)) *
                        static_cast<double>(layout.channels);
  if (values > static_cast<double>(kMaxValues)) {
    throw ValueError("a preview of " + std::to_string(layout.tiles) + " images of " + std::to_string(batch_shape[1]) + "x" +
                     std::to_string(batch_shape[2]) + " would be too large to draw; use fewer or smaller images");
  }
  layout.width = options.gap + layout.columns * (layout.tile_width + options.gap);
  layout.height = options.gap + layout.rows * (layout.tile_height + layout.caption_height + options.gap);
  return layout;
}

// The first options.max_tiles images of `images` [batch, height, width, channels] as a grid, row
// by row, image i captioned with captions[i] (no caption where captions has none). Captions are
// centred under their tile, and cut to what fits in its width.
inline BatchPreview batch_preview(const Tensor& images, const std::vector<std::string>& captions,
                                  const BatchPreviewOptions& options = {}) {
  using namespace batch_preview_detail;
  const BatchPreviewLayout layout = batch_preview_layout(images.shape(), options);
  const int64_t channels = layout.channels, colours = colour_channels(channels);
  const int64_t image_height = images.dim(1), image_width = images.dim(2);
  // From the input's scale to 0-255: a pixel equal to options.white becomes 255.
  const float to_byte_scale = 255.0f / options.white;

  Tensor preview(Shape{layout.height, layout.width, channels});
  auto pixel = [&](int64_t row, int64_t column) { return preview.data() + (row * layout.width + column) * channels; };
  for (int64_t row = 0; row < layout.height; ++row) {
    for (int64_t column = 0; column < layout.width; ++column) {
      float* out = pixel(row, column);
      for (int64_t c = 0; c < channels; ++c) out[c] = c < colours ? kBackground : kOpaque;
    }
  }

  for (int64_t tile = 0; tile < layout.tiles; ++tile) {
    const float* image = images.data() + tile * image_height * image_width * channels;
    const int64_t top = layout.tile_top(tile), left = layout.tile_left(tile);
    for (int64_t row = 0; row < layout.tile_height; ++row) {
      for (int64_t column = 0; column < layout.tile_width; ++column) {
        const float* in = image + ((row / layout.scale) * image_width + column / layout.scale) * channels;
        float* out = pixel(top + row, left + column);
        for (int64_t c = 0; c < channels; ++c) out[c] = in[c] * to_byte_scale;
      }
    }

    if (static_cast<size_t>(tile) >= captions.size()) continue;
    std::string caption = drawable(captions[static_cast<size_t>(tile)]);
    if (static_cast<int64_t>(caption.size()) > layout.caption_characters()) caption.resize(static_cast<size_t>(layout.caption_characters()));
    if (caption.empty()) continue;
    const int64_t text_width = static_cast<int64_t>(caption.size()) * tiny_font::kAdvance - 1;
    const int64_t text_left = left + (layout.tile_width - text_width) / 2;
    const int64_t text_top = layout.caption_top(tile) + kCaptionPaddingAbove;
    for (size_t i = 0; i < caption.size(); ++i) {
      for (int row = 0; row < tiny_font::kGlyphHeight; ++row) {
        for (int column = 0; column < tiny_font::kGlyphWidth; ++column) {
          if (!tiny_font::ink(caption[i], row, column)) continue;
          float* out = pixel(text_top + row, text_left + static_cast<int64_t>(i) * tiny_font::kAdvance + column);
          for (int64_t c = 0; c < colours; ++c) out[c] = kInk;
        }
      }
    }
  }
  return {std::move(preview), layout};
}

// A caption per image from a batch's labels: the class name of a sparse label (an index, Keras's
// label_mode "int"), or of the largest entry of a one-hot row ("categorical"). A label that names
// no class is shown as its number.
inline std::vector<std::string> class_captions(const Tensor& labels, const std::vector<std::string>& class_names) {
  const int64_t count = labels.rank() == 0 ? 0 : labels.dim(0);
  const int64_t per_label = count == 0 ? 0 : labels.size() / count;
  std::vector<std::string> captions;
  for (int64_t i = 0; i < count; ++i) {
    const float* label = labels.data() + i * per_label;
    const float index = per_label == 1 ? label[0] : static_cast<float>(std::max_element(label, label + per_label) - label);
    const bool names_a_class = index >= 0.0f && index < static_cast<float>(class_names.size()) && index == std::floor(index);
    if (names_a_class) {
      captions.push_back(class_names[static_cast<size_t>(index)]);
    } else {
      char number[32];
      std::snprintf(number, sizeof number, "%g", static_cast<double>(index));
      captions.push_back(number);
    }
  }
  return captions;
}

// Writes the preview as a PNG (by the path's extension: image::save_image also takes .jpg and
// .bmp) through an AtomicFile: a failed write leaves no partial file.
inline void write_batch_preview(const std::string& path, const BatchPreview& preview) { image::save_image(path, preview.image); }

}  // namespace kiln::apps
