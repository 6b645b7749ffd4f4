// Accuracy in its three forms.
#include "kiln/metrics.hpp"

#include "kiln/error.hpp"

namespace kiln::metrics {
namespace {

int64_t argmax_of_row(const float* row, int64_t length) {
  int64_t best = 0;
  for (int64_t j = 1; j < length; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

float weight_of(std::span<const float> sample_weight, int64_t r) {
  return sample_weight.empty() ? 1.0f : sample_weight[static_cast<size_t>(r)];
}

}  // namespace

void Accuracy::update_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight) {
  const int64_t n = y_pred.rows(), outputs = y_pred.row_size();
  Kind kind = kind_;
  if (kind == Kind::Automatic) {
    if (outputs == 1) kind = Kind::Binary;
    else if (y_true.row_size() == 1) kind = Kind::Sparse;
    else kind = Kind::Categorical;
  }
  switch (kind) {
    case Kind::Sparse:
      for (int64_t r = 0; r < n; ++r) {
        const bool right = argmax_of_row(y_pred.data() + r * outputs, outputs) == static_cast<int64_t>(y_true[r]);
        correct_ += right ? weight_of(sample_weight, r) : 0.0f;
        total_ += weight_of(sample_weight, r);
      }
      return;
    case Kind::Categorical:
      for (int64_t r = 0; r < n; ++r) {
        const bool right = argmax_of_row(y_pred.data() + r * outputs, outputs) == argmax_of_row(y_true.data() + r * outputs, outputs);
        correct_ += right ? weight_of(sample_weight, r) : 0.0f;
        total_ += weight_of(sample_weight, r);
      }
      return;
    case Kind::Binary:
    case Kind::Automatic:
      for (int64_t i = 0; i < y_pred.size(); ++i) {
        const bool right = (y_pred[i] > binary_threshold_) == (y_true[i] > 0.5f);
        correct_ += right ? weight_of(sample_weight, i / outputs) : 0.0f;
        total_ += weight_of(sample_weight, i / outputs);
      }
      return;
  }
}

}  // namespace kiln::metrics
