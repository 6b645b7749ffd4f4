// kiln/metrics.hpp — metrics: running values over an epoch, reported beside the loss.
//
// A metric accumulates batch by batch (update) and reports its value so far (result), which is
// what Keras's progress bar shows. Accuracy works out which accuracy is meant from the shapes, as
// Keras's "accuracy" string does: class indices against probabilities (sparse), one-hot against
// probabilities (categorical), or a single output thresholded at 0.5 (binary). With sample
// weights a metric is their weighted mean, as Keras's: sum_r w_r value_r / sum_r w_r.
#pragma once

#include "kiln/tensor.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace kiln {

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  void update(const Tensor& y_pred, const Tensor& y_true) { update_weighted(y_pred, y_true, {}); }
  // One weight per sample (empty: every weight 1).
  virtual void update_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight) = 0;
  virtual double result() const = 0;
};

namespace metrics {

class Accuracy : public Metric {
 public:
  enum class Kind { Automatic, Sparse, Categorical, Binary };
  explicit Accuracy(Kind kind = Kind::Automatic, float binary_threshold = 0.5f)
      : kind_(kind), binary_threshold_(binary_threshold) {}

  std::string name() const override { return "accuracy"; }
  Kind kind() const { return kind_; }
  float binary_threshold() const { return binary_threshold_; }
  void reset() override { correct_ = total_ = 0; }
  void update_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight) override;
  double result() const override { return total_ > 0.0 ? correct_ / total_ : 0.0; }

 private:
  Kind kind_;
  float binary_threshold_;
  double correct_ = 0.0;  // the weights of the right answers (their count, unweighted)
  double total_ = 0.0;    // the weights of all answers
};

// Keras's explicit variants.
inline Accuracy SparseCategoricalAccuracy() { return Accuracy(Accuracy::Kind::Sparse); }
inline Accuracy CategoricalAccuracy() { return Accuracy(Accuracy::Kind::Categorical); }
inline Accuracy BinaryAccuracy(float threshold = 0.5f) { return Accuracy(Accuracy::Kind::Binary, threshold); }

}  // namespace metrics
}  // namespace kiln
