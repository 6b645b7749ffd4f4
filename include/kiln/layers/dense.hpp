// kiln/layers/dense.hpp — the fully connected layer: y = activation(x W + b).
//
// Kernel W is [inputs, units] (Keras's layout, so saved weights match), Glorot-uniform initialised;
// bias b is zero-initialised. Bias and activation are fused into the layer, so a Dense with relu
// is one GEMM plus one pass over its output, forward and backward.
#pragma once

#include "kiln/layers/layer.hpp"

namespace kiln::layers {

class Dense : public Layer {
 public:
  // input_dim > 0 declares the input shape ([input_dim]), as Keras's input_dim does.
  explicit Dense(int64_t units, Activation activation = Activation::Linear, int64_t input_dim = 0);

  std::string type_name() const override { return "Dense"; }
  Shape build(const Shape& input_shape) override;
  std::vector<Parameter*> parameters() override { return {&kernel_, &bias_}; }
  void initialize(uint64_t seed) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  Activation output_activation() const override { return activation_; }
  const Tensor& backward_from_preactivation(const Tensor& dz) override;

  int64_t units() const { return units_; }
  Activation activation() const { return activation_; }
  ConstMatrixMap kernel() const { return {kernel_.value, input_dim_, units_}; }
  ConstVectorMap bias() const { return {bias_.value, units_}; }

 private:
  int64_t units_;
  Activation activation_;
  int64_t input_dim_ = 0;
  Parameter kernel_{"kernel", {}, nullptr, nullptr};
  Parameter bias_{"bias", {}, nullptr, nullptr};
  const Tensor* input_ = nullptr;  // the last forward's x, kept for dW = x^T dz
  Tensor output_;                  // y: [batch, units]
  Tensor preactivation_gradient_;  // dz: [batch, units]
  Tensor input_gradient_;          // dx: [batch, inputs]
};

}  // namespace kiln::layers
