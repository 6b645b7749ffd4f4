// kiln/layers/activation_layer.hpp — an activation function as a layer of its own
// (Keras's layers.Activation), for when it does not follow a Dense that could fuse it.
#pragma once

#include "kiln/layers/layer.hpp"

namespace kiln::layers {

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(kiln::Activation activation) : activation_(activation) {}

  std::string type_name() const override { return "Activation"; }
  Shape build(const Shape& input_shape) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  kiln::Activation output_activation() const override { return activation_; }
  const Tensor& backward_from_preactivation(const Tensor& dz) override { return dz; }

 private:
  kiln::Activation activation_;
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
