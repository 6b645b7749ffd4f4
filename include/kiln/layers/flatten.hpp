// kiln/layers/flatten.hpp — reshapes each sample to a flat vector: [batch, 28, 28] -> [batch, 784].
// Storage is row-major, so flattening is a copy with a new shape; the gradient is reshaped back.
#pragma once

#include "kiln/layers/layer.hpp"

namespace kiln::layers {

class Flatten : public Layer {
 public:
  // input_shape (without the batch axis) may be given, as Keras's input_shape argument.
  Flatten() = default;
  explicit Flatten(Shape input_shape) : Layer(std::move(input_shape)) {}

  std::string type_name() const override { return "Flatten"; }
  Shape build(const Shape& input_shape) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

 private:
  Shape input_shape_;
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
