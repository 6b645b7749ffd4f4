// Loss functions: value and gradient together, per Keras's definitions.
#include "kiln/losses.hpp"

#include "kiln/error.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace kiln::losses {
namespace {

float clip_probability(float p) { return std::clamp(p, kProbabilityEpsilon, 1.0f - kProbabilityEpsilon); }

// True where clipping is active: the clipped log's gradient is zero there, as with Keras's clip.
bool is_clipped(float p) { return p < kProbabilityEpsilon || p > 1.0f - kProbabilityEpsilon; }

void check_same_rows(const Shape& y_pred, const Tensor& y_true, std::string_view loss_name) {
  if (y_pred.rank() < 2 || y_pred[0] != y_true.rows()) {
    throw ShapeError(std::string(loss_name) + ": predictions of shape " + y_pred.str() + " do not go with targets of shape " +
                     y_true.shape().str());
  }
}

void check_same_row_size(const Shape& y_pred, const Tensor& y_true, std::string_view loss_name) {
  check_same_rows(y_pred, y_true, loss_name);
  if (y_pred.without_first_axis().element_count() != y_true.row_size()) {
    throw ShapeError(std::string(loss_name) + " needs targets shaped like the predictions: the model outputs " +
                     y_pred.without_first_axis().str() + " per sample, the targets are " +
                     (y_true.rank() > 1 ? y_true.shape().without_first_axis().str() : std::string("scalars")));
  }
}

// log(softmax(z)[index]) for one row, computed as z[index] - logsumexp(z): exact even where the
// probability would underflow to zero.
double log_softmax_at(const float* z, int64_t classes, int64_t index) {
  const float row_max = *std::max_element(z, z + classes);
  double sum = 0.0;
  for (int64_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(z[j] - row_max));
  return static_cast<double>(z[index] - row_max) - std::log(sum);
}

// sum_r log(clip(p[r, label_r])), equal to the plain loop
//   for (r = 0; r < n; ++r) sum += log(clip(p[r, label_r]));
// but taken as the log of a product, one log for every kRowsPerLog rows instead of one per row: a
// log costs tens of nanoseconds, a multiply one. Each p is clipped to at least 1e-7, so a product
// of 32 stays above 1e-224, far from double's smallest normal number (2.2e-308), and its rounding
// error (31 roundings, under 4e-15 of the product) is no larger than that of a sum of 32 logs.
double sum_of_label_logs(const Tensor& probabilities, const Tensor& labels) {
  constexpr int64_t kRowsPerLog = 32;
  static_assert([] {
    double smallest = 1.0;
    for (int64_t i = 0; i < kRowsPerLog; ++i) smallest *= kProbabilityEpsilon;
    return smallest > std::numeric_limits<double>::min();
  }());
  const int64_t n = probabilities.rows();
  double sum = 0.0;
  for (int64_t first = 0; first < n; first += kRowsPerLog) {
    double product = 1.0;
    for (int64_t r = first; r < std::min(n, first + kRowsPerLog); ++r) {
      product *= static_cast<double>(clip_probability(probabilities.at(r, static_cast<int64_t>(labels[r]))));
    }
    sum += std::log(product);
  }
  return sum;
}

// Sample r's weight: 1 when the batch carries none.
float weight_of(std::span<const float> sample_weight, int64_t r) {
  return sample_weight.empty() ? 1.0f : sample_weight[static_cast<size_t>(r)];
}

}  // namespace

// ---- SparseCategoricalCrossentropy ----------------------------------------------------------------
// loss = sum_r -w_r log p[r, label_r] / n   (w_r = 1 without sample weights)
// w.r.t. the softmax's input z, or from logits:  dz = w_r (p - onehot(label)) / n
// plain, w.r.t. p:                       dp[r, label_r] = -w_r / (n p[r, label_r])
// Why p - onehot: with p = softmax(z), log p_y = z_y - log sum_k exp(z_k), so
// d(-log p_y)/dz_j = exp(z_j) / sum_k exp(z_k) - [j = y] = p_j - [j = y]. Through the softmax there
// is no division by p, which can be tiny: this is why the loss takes over the softmax's gradient.

void SparseCategoricalCrossentropy::check_targets(const Shape& y_pred_shape, const Tensor& y_true) const {
  check_same_rows(y_pred_shape, y_true, name());
  if (y_true.row_size() != 1) {
    throw ShapeError(std::string(name()) + " needs one class index per sample, got targets of shape " + y_true.shape().str() +
                     " (one-hot targets go with categorical_crossentropy)");
  }
  const int64_t classes = y_pred_shape.without_first_axis().element_count();
  for (int64_t r = 0; r < y_true.rows(); ++r) {
    const float label = y_true[r];
    if (!(label >= 0.0f && label < static_cast<float>(classes)) || label != std::floor(label)) {
      std::ostringstream shown;  // "7" or "2.5", not "7.000000"
      shown << label;
      throw ValueError(std::string(name()) + ": label " + shown.str() + " of sample " + std::to_string(r) +
                       " is not a class index of the model's " + std::to_string(classes) + " outputs (0.." +
                       std::to_string(classes - 1) + ")");
    }
  }
}

double SparseCategoricalCrossentropy::compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight,
                                                      Tensor* gradient, GradientWith with) {
  const int64_t n = y_pred.rows(), classes = y_pred.row_size();
  const Tensor* probabilities = &y_pred;
  if (from_logits_) {
    probabilities_.resize(y_pred.shape());
    probabilities_.matrix() = y_pred.matrix();
    activation_forward(Activation::Softmax, probabilities_.matrix());
    probabilities = &probabilities_;
  }
  double total = 0.0;
  if (from_logits_) {
    for (int64_t r = 0; r < n; ++r) {
      total -= weight_of(sample_weight, r) * log_softmax_at(y_pred.data() + r * classes, classes, static_cast<int64_t>(y_true[r]));
    }
  } else if (!sample_weight.empty()) {
    for (int64_t r = 0; r < n; ++r) {
      total -= sample_weight[static_cast<size_t>(r)] *
               std::log(static_cast<double>(clip_probability(probabilities->at(r, static_cast<int64_t>(y_true[r])))));
    }
  } else {
    total = -sum_of_label_logs(*probabilities, y_true);
  }
  if (gradient) {
    gradient->resize(y_pred.shape());
    const float inverse_n = 1.0f / static_cast<float>(n);
    if (with == GradientWith::PreActivation || from_logits_) {
      gradient->matrix() = probabilities->matrix() * inverse_n;
      for (int64_t r = 0; r < n; ++r) gradient->at(r, static_cast<int64_t>(y_true[r])) -= inverse_n;
      if (!sample_weight.empty()) {
        for (int64_t r = 0; r < n; ++r) gradient->matrix().row(r) *= sample_weight[static_cast<size_t>(r)];
      }
    } else {
      gradient->matrix().setZero();
      for (int64_t r = 0; r < n; ++r) {
        const auto label = static_cast<int64_t>(y_true[r]);
        const float p = y_pred.at(r, label);
        gradient->at(r, label) = is_clipped(p) ? 0.0f : -weight_of(sample_weight, r) * inverse_n / p;
      }
    }
  }
  return total / static_cast<double>(n);
}

// ---- CategoricalCrossentropy ----------------------------------------------------------------------
// Keras first rescales each row of p to sum to 1 (S = sum p), then clips:
// loss = sum_r -w_r sum_j y_j log(p_j / S) / n
// w.r.t. the softmax's input z, or from logits:  dz = w_r (p * sum(y) - y) / n
// plain, w.r.t. p:                       dp_j = w_r (-y_j / p_j + sum(y) / S) / n

void CategoricalCrossentropy::check_targets(const Shape& y_pred_shape, const Tensor& y_true) const {
  check_same_row_size(y_pred_shape, y_true, name());
}

double CategoricalCrossentropy::compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight,
                                                Tensor* gradient, GradientWith with) {
  const int64_t n = y_pred.rows(), classes = y_pred.row_size();
  if (from_logits_) {
    probabilities_.resize(y_pred.shape());
    probabilities_.matrix() = y_pred.matrix();
    activation_forward(Activation::Softmax, probabilities_.matrix());
  }
  if (gradient) gradient->resize(y_pred.shape());
  const float inverse_n = 1.0f / static_cast<float>(n);
  double total = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    const float* p = (from_logits_ ? probabilities_.data() : y_pred.data()) + r * classes;
    const float* y = y_true.data() + r * classes;
    float target_sum = 0.0f, prediction_sum = 0.0f;
    for (int64_t j = 0; j < classes; ++j) {
      target_sum += y[j];
      prediction_sum += p[j];
    }
    double row_loss = 0.0;
    for (int64_t j = 0; j < classes; ++j) {
      if (y[j] == 0.0f) continue;
      row_loss -= y[j] * (from_logits_ ? log_softmax_at(y_pred.data() + r * classes, classes, j)
                                       : std::log(static_cast<double>(clip_probability(p[j] / prediction_sum))));
    }
    const float weight = weight_of(sample_weight, r);
    total += sample_weight.empty() ? row_loss : weight * row_loss;
    if (!gradient) continue;
    float* g = gradient->data() + r * classes;
    const float scale = weight * inverse_n;
    for (int64_t j = 0; j < classes; ++j) {
      if (with == GradientWith::PreActivation || from_logits_) {
        g[j] = (p[j] * target_sum - y[j]) * scale;
      } else {
        const float log_term = is_clipped(p[j] / prediction_sum) ? 0.0f : -y[j] / p[j];
        g[j] = (log_term + target_sum / prediction_sum) * scale;
      }
    }
  }
  return total / static_cast<double>(n);
}

// ---- BinaryCrossentropy ---------------------------------------------------------------------------
// N = every element; loss = sum -w_r (y log p + (1 - y) log(1 - p)) / N, p clipped, w_r the weight
// of the element's sample (its row)
// w.r.t. the sigmoid's input z, or from logits:  dz = w_r (sigmoid(z) - y) / N
// plain, w.r.t. p:                       dp = w_r (p - y) / (p (1 - p) N)

void BinaryCrossentropy::check_targets(const Shape& y_pred_shape, const Tensor& y_true) const {
  check_same_row_size(y_pred_shape, y_true, name());
}

double BinaryCrossentropy::compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight,
                                           Tensor* gradient, GradientWith with) {
  const int64_t count = y_pred.size(), per_row = y_pred.row_size();
  if (gradient) gradient->resize(y_pred.shape());
  const float inverse_count = 1.0f / static_cast<float>(count);
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const float y = y_true[i];
    const float weight = weight_of(sample_weight, i / per_row), scale = weight * inverse_count;
    double element_loss = 0.0;
    if (from_logits_) {
      // Stable form of the logistic loss: max(z, 0) - z y + log(1 + exp(-|z|)).
      const double z = y_pred[i];
      element_loss = std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::abs(z)));
      if (gradient) (*gradient)[i] = (1.0f / (1.0f + std::exp(-y_pred[i])) - y) * scale;
    } else {
      const float raw_p = y_pred[i];
      const double p = clip_probability(raw_p);
      element_loss = -(y * std::log(p) + (1.0 - y) * std::log(1.0 - p));
      if (gradient) {
        (*gradient)[i] = with == GradientWith::PreActivation ? (raw_p - y) * scale : is_clipped(raw_p) ? 0.0f : (raw_p - y) / (raw_p * (1.0f - raw_p)) * scale;
      }
    }
    total += sample_weight.empty() ? element_loss : weight * element_loss;
  }
  return total / static_cast<double>(count);
}

// ---- MeanSquaredError -----------------------------------------------------------------------------
// loss = sum w_r (p - y)^2 / N over all N elements, w_r the weight of the element's sample (row);
// dp = 2 w_r (p - y) / N

void MeanSquaredError::check_targets(const Shape& y_pred_shape, const Tensor& y_true) const {
  check_same_row_size(y_pred_shape, y_true, name());
}

double MeanSquaredError::compute_weighted(const Tensor& y_pred, const Tensor& y_true, std::span<const float> sample_weight,
                                         Tensor* gradient, GradientWith /*with*/) {
  const int64_t count = y_pred.size(), per_row = y_pred.row_size();
  if (gradient) gradient->resize(y_pred.shape());
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const float difference = y_pred[i] - y_true[i], weight = weight_of(sample_weight, i / per_row);
    const double squared = static_cast<double>(difference) * difference;
    total += sample_weight.empty() ? squared : weight * squared;
    if (gradient) (*gradient)[i] = weight * 2.0f * difference / static_cast<float>(count);
  }
  return total / static_cast<double>(count);
}

}  // namespace kiln::losses
