// kiln/layers/conv2d.hpp — the 2-D convolution: y = activation(conv(x, K) + b), on NHWC images.
//
// Keras's Conv2D: `filters` kernels of kernel_size over all input channels, moved by `strides`,
// with 'valid' or 'same' padding (window2d.hpp). The kernel K is [kh, kw, in_channels, filters]
// (Keras's layout, so saved weights match), Glorot-uniform initialised with
// fan_in = kh * kw * in_channels and fan_out = kh * kw * filters; the bias b is zero-initialised.
//
// How it computes: im2col. Each output position's receptive field, kh x kw x in_channels values,
// is copied into one row of a patch matrix P ([batch * out_h * out_w, kh * kw * in_channels]).
// Read as a matrix, K is [kh * kw * in_channels, filters] in the same order, so the whole
// convolution is one GEMM, Y = P K, whose rows are already NHWC's output pixels. Backward is two
// more GEMMs and the copy run in reverse (col2im, conv2d.cpp). The price is P's memory, kh * kw
// times the input's; the gain is that the work runs in kiln's GEMM, at its full rate.
#pragma once

#include "kiln/layers/layer.hpp"
#include "kiln/layers/window2d.hpp"

#include <optional>

namespace kiln::layers {

struct Conv2DOptions {
  Size2D strides{1};
  Padding padding = Padding::Valid;
  Activation activation = Activation::Linear;
  bool use_bias = true;
  std::optional<Shape> input_shape;  // [height, width, channels], as Keras's input_shape
};

class Conv2D : public Layer {
 public:
  Conv2D(int64_t filters, Size2D kernel_size, const Conv2DOptions& options = {});

  std::string type_name() const override { return "Conv2D"; }
  Shape build(const Shape& input_shape) override;
  std::vector<Parameter*> parameters() override;
  void initialize(uint64_t seed) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  Activation output_activation() const override { return activation_; }
  const Tensor& backward_from_preactivation(const Tensor& dz) override;

  int64_t filters() const { return filters_; }
  Size2D kernel_size() const { return window_.size; }
  Size2D strides() const { return window_.strides; }
  Padding padding() const { return window_.padding; }
  Activation activation() const { return activation_; }
  bool use_bias() const { return use_bias_; }

 private:
  int64_t patch_size() const { return window_.size.height * window_.size.width * channels_; }
  void gather_patches(const Tensor& x);
  void scatter_patch_gradients(int64_t batch);

  int64_t filters_;
  Activation activation_;
  bool use_bias_;
  Window2D window_;
  int64_t channels_ = 0;
  Parameter kernel_{"kernel", {}, nullptr, nullptr};
  Parameter bias_{"bias", {}, nullptr, nullptr};
  Tensor patches_;                 // P: [batch * out_h * out_w, kh * kw * channels]; in backward, dP = dz K^T
  Tensor output_pixels_;           // Y: [batch * out_h * out_w, filters]
  Tensor output_;                  // Y viewed as [batch, out_h, out_w, filters]
  Tensor output_gradient_pixels_;  // dy viewed as Y's rows
  Tensor preactivation_gradient_;  // dz: [batch * out_h * out_w, filters]
  Tensor input_gradient_;          // dx: [batch, height, width, channels]
};

}  // namespace kiln::layers
