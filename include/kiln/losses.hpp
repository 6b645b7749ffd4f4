// kiln/losses.hpp — loss functions: the batch's mean loss and its gradient in one call.
//
// Keras's definitions and defaults: probabilities are clipped to [1e-7, 1 - 1e-7] before a log;
// each loss is the mean over the batch (and, for element-wise losses, over the last axis). With
// sample weights, Keras's "sum over batch size": sum_r w_r loss_r / n, so a weight of 2 counts a
// sample twice and a weight of 0 leaves it out, while n stays the batch's size.
// When the model's output activation is the loss's natural partner (softmax for cross-entropy,
// sigmoid for binary cross-entropy), the gradient is given w.r.t. that activation's input: the
// exact and numerically stable (p - y) / n, with no division by a tiny probability.
#pragma once

#include "kiln/activations.hpp"
#include "kiln/tensor.hpp"

#include <span>
#include <string>
#include <string_view>

namespace kiln {

// What a loss's gradient is taken with respect to.
enum class GradientWith {
  Predictions,    // d(loss)/d(y_pred)
  PreActivation,  // d(loss)/d(z), where y_pred = activation(z) and the loss fuses_with() that activation
};

class Loss {
 public:
  virtual ~Loss() = default;
  // "sparse_categorical_crossentropy", as Keras names it; a view, so asking costs no allocation.
  virtual std::string_view name() const = 0;

  // Throws ShapeError / ValueError when y_true cannot go with predictions of this shape
  // ([batch, outputs...]), naming both shapes (or the bad label and its row).
  virtual void check_targets(const Shape& y_pred_shape, const Tensor& y_true) const = 0;

  // Mean loss over the batch. If gradient is not null it receives the loss's gradient with
  // respect to the predictions or to the output activation's input, as `with` says.
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* gradient, GradientWith with) {
    return compute_weighted(y_pred, y_true, {}, gradient, with);
  }

  // The same with one weight per sample (empty: every weight 1): sum_r w_r loss_r / n, and row r
  // of the gradient scaled by w_r.
  virtual double compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight,
                                  Tensor* gradient, GradientWith with) = 0;

  // True when this loss can give its gradient with respect to the output activation's input
  // (GradientWith::PreActivation).
  virtual bool fuses_with(Activation /*output_activation*/) const { return false; }
};

namespace losses {

// Clipping bound for probabilities before a log, Keras's backend epsilon.
inline constexpr float kProbabilityEpsilon = 1e-7f;

// y_true: [batch] (or [batch, 1]) class indices; y_pred: [batch, classes] probabilities
// (or logits with from_logits = true).
class SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false) : from_logits_(from_logits) {}
  std::string_view name() const override { return "sparse_categorical_crossentropy"; }
  bool from_logits() const { return from_logits_; }
  void check_targets(const Shape& y_pred_shape, const Tensor& y_true) const override;
  double compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight, Tensor* gradient,
                          GradientWith with) override;
  bool fuses_with(Activation a) const override { return !from_logits_ && a == Activation::Softmax; }

 private:
  bool from_logits_;
  Tensor probabilities_;  // softmax of logits, when from_logits
};

// y_true: [batch, classes] one-hot (or any distribution); y_pred as above.
class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false) : from_logits_(from_logits) {}
  std::string_view name() const override { return "categorical_crossentropy"; }
  bool from_logits() const { return from_logits_; }
  void check_targets(const Shape& y_pred_shape, const Tensor& y_true) const override;
  double compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight, Tensor* gradient,
                          GradientWith with) override;
  bool fuses_with(Activation a) const override { return !from_logits_ && a == Activation::Softmax; }

 private:
  bool from_logits_;
  Tensor probabilities_;
};

// y_true, y_pred: [batch, k] with targets in [0, 1]; y_pred probabilities (or logits).
class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false) : from_logits_(from_logits) {}
  std::string_view name() const override { return "binary_crossentropy"; }
  bool from_logits() const { return from_logits_; }
  void check_targets(const Shape& y_pred_shape, const Tensor& y_true) const override;
  double compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight, Tensor* gradient,
                          GradientWith with) override;
  bool fuses_with(Activation a) const override { return !from_logits_ && a == Activation::Sigmoid; }

 private:
  bool from_logits_;
};

// Mean of (y_pred - y_true)^2 over every element.
class MeanSquaredError : public Loss {
 public:
  std::string_view name() const override { return "mean_squared_error"; }
  void check_targets(const Shape& y_pred_shape, const Tensor& y_true) const override;
  double compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight, Tensor* gradient,
                          GradientWith with) override;
};

}  // namespace losses
}  // namespace kiln
