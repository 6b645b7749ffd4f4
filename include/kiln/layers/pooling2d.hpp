// kiln/layers/pooling2d.hpp — Keras's 2-D pooling layers on NHWC images, each channel on its own:
//   MaxPooling2D            the largest value in each window;
//   AveragePooling2D        the mean of each window (with 'same' padding, of the part inside the
//                           image, as TensorFlow computes it);
//   GlobalAveragePooling2D  the mean of each whole image: [batch, h, w, c] -> [batch, c].
// pool_size defaults to 2x2 and strides to pool_size, as in Keras. No parameters.
#pragma once

#include "kiln/layers/layer.hpp"
#include "kiln/layers/window2d.hpp"

#include <optional>
#include <vector>

namespace kiln::layers {

struct Pooling2DOptions {
  std::optional<Size2D> strides;  // pool_size when not given
  Padding padding = Padding::Valid;
  std::optional<Shape> input_shape;  // [height, width, channels]
};

// What the two windowed pooling layers share: the window and the input checks.
class WindowPooling2D : public Layer {
 public:
  Shape build(const Shape& input_shape) override;

  Size2D pool_size() const { return window_.size; }
  Size2D strides() const { return window_.strides; }
  Padding padding() const { return window_.padding; }

 protected:
  WindowPooling2D(const std::string& type, Size2D pool_size, const Pooling2DOptions& options);
  void check_input(const Tensor& x) const;
  void check_output_gradient(const Tensor& dy) const;

  Window2D window_;
  int64_t channels_ = 0;
  Tensor output_;          // [batch, out_h, out_w, channels]
  Tensor input_gradient_;  // [batch, height, width, channels]
};

class MaxPooling2D : public WindowPooling2D {
 public:
  explicit MaxPooling2D(Size2D pool_size = 2, const Pooling2DOptions& options = {})
      : WindowPooling2D("MaxPooling2D", pool_size, options) {}
  std::string type_name() const override { return "MaxPooling2D"; }
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

 private:
  // For each output value, where in its sample's input the maximum was (the first, on ties):
  // backward sends the whole gradient there, the derivative of max being 1 for it and 0 elsewhere.
  std::vector<int32_t> winners_;
};

class AveragePooling2D : public WindowPooling2D {
 public:
  explicit AveragePooling2D(Size2D pool_size = 2, const Pooling2DOptions& options = {})
      : WindowPooling2D("AveragePooling2D", pool_size, options) {}
  std::string type_name() const override { return "AveragePooling2D"; }
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
};

class GlobalAveragePooling2D : public Layer {
 public:
  GlobalAveragePooling2D() = default;
  explicit GlobalAveragePooling2D(Shape input_shape) : Layer(std::move(input_shape)) {}
  std::string type_name() const override { return "GlobalAveragePooling2D"; }
  Shape build(const Shape& input_shape) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

 private:
  Shape input_shape_;
  Tensor output_;          // [batch, channels]
  Tensor input_gradient_;  // [batch, height, width, channels]
};

}  // namespace kiln::layers
