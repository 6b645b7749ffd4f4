// kiln/layers/window2d.hpp — how a 2-D window (a convolution's kernel, a pooling window) slides
// over an image: its size, its strides, its padding, and the output size they give.
//
// Images are NHWC, Keras's channels_last: [batch, height, width, channels]. Output position
// (oh, ow) reads input rows oh * stride_h - pad_top + i for i in [0, window_h), and columns
// likewise; a position outside the image reads zero (convolution) or is left out (pooling).
// Padding as Keras (and TensorFlow) define it:
//   valid: no padding; out = floor((in - window) / stride) + 1
//   same:  out = ceil(in / stride); the padding needed, max((out - 1) * stride + window - in, 0),
//          is split with the odd one at the bottom / right: pad_top = total / 2.
#pragma once

#include "kiln/tensor.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::layers {

enum class Padding { Valid, Same };

std::string_view padding_name(Padding padding);  // "valid", "same"
Padding padding_from_name(std::string_view name);  // throws ValueError on another name

// A height and a width: Size2D(3) is 3x3, Size2D(3, 5) is 3 high and 5 wide, as Keras's
// kernel_size=3 and kernel_size=(3, 5).
struct Size2D {
  int64_t height, width;
  Size2D(int64_t both) : height(both), width(both) {}  // NOLINT: implicit, as Keras takes an int
  Size2D(int64_t height_, int64_t width_) : height(height_), width(width_) {}
  friend bool operator==(const Size2D&, const Size2D&) = default;
};

struct Window2D {
  Size2D size{1}, strides{1};
  Padding padding = Padding::Valid;
  // Set by fit_to(): the input image and what the window gives over it.
  int64_t input_height = 0, input_width = 0;
  int64_t output_height = 0, output_width = 0;
  int64_t pad_top = 0, pad_left = 0;

  // Fixes the output size and padding for an input of height x width. Throws ShapeError, naming
  // `layer`, when the window does not fit (valid padding on too small an image).
  void fit_to(int64_t height, int64_t width, const std::string& layer);
};

// Checks a layer argument's two sizes are positive, naming the layer and the argument.
void check_positive(const Size2D& size, const std::string& layer, const std::string& argument);

}  // namespace kiln::layers
