// Window2D: the output size and padding of a sliding 2-D window, as Keras computes them.
#include "kiln/layers/window2d.hpp"

#include "kiln/error.hpp"

namespace kiln::layers {

std::string_view padding_name(Padding padding) { return padding == Padding::Same ? "same" : "valid"; }

Padding padding_from_name(std::string_view name) {
  if (name == "valid") return Padding::Valid;
  if (name == "same") return Padding::Same;
  throw ValueError("padding must be 'valid' or 'same', got '" + std::string(name) + "'");
}

void check_positive(const Size2D& size, const std::string& layer, const std::string& argument) {
  if (size.height <= 0 || size.width <= 0) {
    throw ValueError(layer + "'s " + argument + " must be positive, got " + std::to_string(size.height) + "x" +
                     std::to_string(size.width));
  }
}

namespace {

// One axis: the output length, and the padding before the first element.
struct AxisFit {
  int64_t output = 0, pad_before = 0;
};

AxisFit fit_axis(int64_t input, int64_t window, int64_t stride, Padding padding) {
  if (padding == Padding::Valid) {
    if (input < window) return {0, 0};
    return {(input - window) / stride + 1, 0};
  }
  const int64_t output = (input + stride - 1) / stride;
  const int64_t total_padding = std::max<int64_t>((output - 1) * stride + window - input, 0);
  return {output, total_padding / 2};
}

}  // namespace

void Window2D::fit_to(int64_t height, int64_t width, const std::string& layer) {
  const AxisFit rows = fit_axis(height, size.height, strides.height, padding);
  const AxisFit columns = fit_axis(width, size.width, strides.width, padding);
  if (rows.output <= 0 || columns.output <= 0) {
    throw ShapeError(layer + ": a " + std::to_string(size.height) + "x" + std::to_string(size.width) +
                     " window with padding 'valid' does not fit a " + std::to_string(height) + "x" +
                     std::to_string(width) + " image");
  }
  input_height = height;
  input_width = width;
  output_height = rows.output;
  output_width = columns.output;
  pad_top = rows.pad_before;
  pad_left = columns.pad_before;
}

}  // namespace kiln::layers
