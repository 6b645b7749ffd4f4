// kiln/layers/batch_normalization.hpp — Keras's BatchNormalization over the last axis (the
// channels of NHWC images, the features of a flat vector).
//
// In training each channel c is normalised by its batch statistics, taken over every other axis:
//   mean_c = avg(x_c),  var_c = avg((x_c - mean_c)^2),  x_hat = (x_c - mean_c) / sqrt(var_c + epsilon)
//   y = gamma_c * x_hat + beta_c
// and the moving statistics follow them: moving = moving * momentum + batch * (1 - momentum),
// with the batch's (biased) variance, as Keras does. At inference the moving statistics take the
// batch's place. gamma starts at 1, beta at 0, moving_mean at 0 and moving_variance at 1;
// momentum 0.99 and epsilon 0.001 are Keras's defaults. moving_mean and moving_variance are
// non-trainable parameters (layer.hpp): saved with the weights, never moved by the optimizer.
//
// Every sum over a channel is cut into a fixed number of slices of the rows, summed on the team
// and then added in order, so the result is the same whatever the thread count.
#pragma once

#include "kiln/layers/layer.hpp"

#include <optional>
#include <vector>

namespace kiln::layers {

struct BatchNormalizationOptions {
  float momentum = 0.99f;
  float epsilon = 1e-3f;
  std::optional<Shape> input_shape;
};

class BatchNormalization : public Layer {
 public:
  explicit BatchNormalization(const BatchNormalizationOptions& options = {});

  std::string type_name() const override { return "BatchNormalization"; }
  Shape build(const Shape& input_shape) override;
  std::vector<Parameter*> parameters() override { return {&gamma_, &beta_, &moving_mean_, &moving_variance_}; }
  void initialize(uint64_t seed) override;

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

  float momentum() const { return momentum_; }
  float epsilon() const { return epsilon_; }

 private:
  // Per channel, the sums over the rows of `a` (and, if b is given, of a * b), each a fixed
  // slice of the rows at a time, into first[c] and second[c].
  void channel_sums(const float* a, const float* b, int64_t rows, double* first, double* second);

  float momentum_, epsilon_;
  Shape input_shape_;
  int64_t channels_ = 0;
  Parameter gamma_{"gamma", {}, nullptr, nullptr};
  Parameter beta_{"beta", {}, nullptr, nullptr};
  Parameter moving_mean_{"moving_mean", {}, nullptr, nullptr, false};
  Parameter moving_variance_{"moving_variance", {}, nullptr, nullptr, false};
  bool last_was_training_ = false;
  std::vector<double> slice_sums_;          // [kSlices][2][channels]: each slice's partial sums
  std::vector<double> sums_, second_sums_;  // [channels]
  std::vector<float> mean_, inverse_std_;   // [channels]: what the last forward normalised with
  Tensor normalized_;                       // x_hat, x's shape
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
