// kiln/layers/reshape.hpp — Keras's Reshape: each sample to target_shape, its elements in the
// same row-major order: Reshape({28, 28, 1}) turns [batch, 28, 28] images into the one-channel
// NHWC images Conv2D takes. One axis of target_shape may be -1, worked out from the others.
// The output is a view of the input (no copy), and the gradient a view of dy.
#pragma once

#include "kiln/layers/layer.hpp"

#include <cstdint>
#include <vector>

namespace kiln::layers {

class Reshape : public Layer {
 public:
  explicit Reshape(std::vector<int64_t> target_shape) : target_shape_(std::move(target_shape)) {}
  Reshape(std::vector<int64_t> target_shape, Shape input_shape)
      : Layer(std::move(input_shape)), target_shape_(std::move(target_shape)) {}

  std::string type_name() const override { return "Reshape"; }
  Shape build(const Shape& input_shape) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

  const std::vector<int64_t>& target_shape() const { return target_shape_; }  // as given, -1 included

 private:
  std::vector<int64_t> target_shape_;
  Shape input_shape_, output_shape_;
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
