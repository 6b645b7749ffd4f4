// kiln/layers/rescaling.hpp — Keras's Rescaling layer: y = x * scale + offset, element-wise.
//
// Puts pixel scaling inside the model, so the model takes images as they are decoded (0-255)
// and saved weights come with their preprocessing: Rescaling(1 / 255.f) maps 0-255 to [0, 1],
// Rescaling(1 / 127.5f, -1) maps it to [-1, 1]. No parameters; any input shape.
#pragma once

#include "kiln/layers/layer.hpp"

namespace kiln::layers {

class Rescaling : public Layer {
 public:
  explicit Rescaling(float scale, float offset = 0.0f) : scale_(scale), offset_(offset) {}
  // input_shape (without the batch axis), as Keras's input_shape argument: [height, width, channels].
  Rescaling(float scale, float offset, Shape input_shape) : Layer(std::move(input_shape)), scale_(scale), offset_(offset) {}

  std::string type_name() const override { return "Rescaling"; }
  Shape build(const Shape& input_shape) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

  float scale() const { return scale_; }
  float offset() const { return offset_; }

 private:
  float scale_;
  float offset_;
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
