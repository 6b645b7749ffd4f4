// examples/reference/plain_model.hpp — kiln's reference model, trained the plainest way there is.
//
// Flatten -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax), sparse categorical
// cross-entropy and Adam: the model kiln's apps train, written as loops over std::vector with
// none of kiln's machinery (no GEMM kernel or tiles, no parameter arena, no threads, no fused
// tricks). One training step is forward, loss, backward and Adam, each line beside the calculus
// it comes from. It is slow on purpose: it is what kiln's fast path must agree with
// (tests/test_reference.cpp trains both from the same weights and compares), and the page to
// read first when the fast code is hard to follow.
//
// Matrices are row-major: element (r, c) of a matrix with `cols` columns is at [r * cols + c].
// A Dense kernel is [inputs, units], as Keras stores it, so a layer computes z = x W + b.
#pragma once

#include <kiln/random.hpp>  // mix64 and uniform_from_counter: Dropout draws its mask as kiln's does

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace reference {

// A weight tensor with its gradient and Adam's two moments, all flat.
struct Parameter {
  explicit Parameter(std::vector<float> initial)
      : value(std::move(initial)), gradient(value.size()), m(value.size()), v(value.size()) {}
  std::vector<float> value, gradient, m, v;
};

// z = x W + b for n rows: x [n, in], W [in, out], b [out], z [n, out].
inline void dense_forward(const std::vector<float>& x, const Parameter& W, const Parameter& b, int n, int in, int out,
                          std::vector<float>& z) {
  z.assign(static_cast<size_t>(n) * out, 0.0f);
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < in; ++k) {
      for (int j = 0; j < out; ++j) z[r * out + j] += x[r * in + k] * W.value[k * out + j];
    }
    for (int j = 0; j < out; ++j) z[r * out + j] += b.value[j];
  }
}

// Given dz = dL/dz [n, out], the gradients of z = x W + b. Since z[r, j] = sum_k x[r, k] W[k, j] + b[j]:
//   dL/dW[k, j] = sum_r dz[r, j] x[r, k]     so  dW = x^T dz   [in, out]
//   dL/db[j]    = sum_r dz[r, j]             so  db = the column sums of dz
//   dL/dx[r, k] = sum_j dz[r, j] W[k, j]     so  dx = dz W^T   [n, in]  (only if dx is wanted)
inline void dense_backward(const std::vector<float>& x, const std::vector<float>& dz, Parameter& W, Parameter& b, int n, int in,
                           int out, std::vector<float>* dx) {
  std::fill(W.gradient.begin(), W.gradient.end(), 0.0f);
  std::fill(b.gradient.begin(), b.gradient.end(), 0.0f);
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < in; ++k) {
      for (int j = 0; j < out; ++j) W.gradient[k * out + j] += x[r * in + k] * dz[r * out + j];
    }
    for (int j = 0; j < out; ++j) b.gradient[j] += dz[r * out + j];
  }
  if (!dx) return;
  dx->assign(static_cast<size_t>(n) * in, 0.0f);
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < in; ++k) {
      for (int j = 0; j < out; ++j) (*dx)[r * in + k] += dz[r * out + j] * W.value[k * out + j];
    }
  }
}

class PlainModel {
 public:
  static constexpr int kInputs = 784, kHidden = 128, kClasses = 10;

  // The starting weights (kernels [inputs, units], biases [units]) and Dropout's seed and step,
  // taken from a kiln model so that both start alike.
  PlainModel(std::vector<float> kernel_1, std::vector<float> bias_1, std::vector<float> kernel_2, std::vector<float> bias_2,
             float dropout_rate, uint64_t dropout_seed, uint64_t dropout_step, float learning_rate = 1e-3f)
      : W1_(std::move(kernel_1)), b1_(std::move(bias_1)), W2_(std::move(kernel_2)), b2_(std::move(bias_2)),
        rate_(dropout_rate), dropout_seed_(dropout_seed), dropout_step_(dropout_step), learning_rate_(learning_rate) {}

  // One step of training on n images x [n, 784] with class labels y [n]; returns the batch's
  // mean loss (before the step).
  double train_step(const std::vector<float>& x, const std::vector<float>& y, int n) {
    // ---- forward -------------------------------------------------------------------------------
    dense_forward(x, W1_, b1_, n, kInputs, kHidden, z1_);  // z1 = x W1 + b1
    h_.resize(z1_.size());
    for (size_t i = 0; i < z1_.size(); ++i) h_[i] = std::max(z1_[i], 0.0f);  // h = relu(z1)

    // Dropout: each h is kept with probability 1 - rate and scaled by 1 / (1 - rate), so its
    // expected value is unchanged; the draw for element i of step s is uniform_from_counter(
    // mix64(seed + s), i), as kiln's Dropout makes it.
    const uint64_t step_seed = kiln::mix64(dropout_seed_ + dropout_step_++);
    keep_.resize(h_.size());
    d_.resize(h_.size());
    for (size_t i = 0; i < h_.size(); ++i) {
      keep_[i] = kiln::uniform_from_counter(step_seed, i) < rate_ ? 0.0f : 1.0f / (1.0f - rate_);
      d_[i] = h_[i] * keep_[i];
    }
    dense_forward(d_, W2_, b2_, n, kHidden, kClasses, z2_);  // z2 = d W2 + b2

    // p = softmax(z2) row by row; subtracting the row's largest z first changes nothing in
    // exp(z_j) / sum_k exp(z_k) but keeps every exp() at most 1, so none overflows.
    p_.resize(z2_.size());
    for (int r = 0; r < n; ++r) {
      const float* z = &z2_[r * kClasses];
      float* p = &p_[r * kClasses];
      const float largest = *std::max_element(z, z + kClasses);
      float sum = 0.0f;
      for (int j = 0; j < kClasses; ++j) sum += p[j] = std::exp(z[j] - largest);
      for (int j = 0; j < kClasses; ++j) p[j] /= sum;
    }

    // loss = -(1/n) sum_r log p[r, y_r], with p clipped to [1e-7, 1 - 1e-7] as Keras does, one log
    // per row.
    double loss = 0.0;
    for (int r = 0; r < n; ++r) {
      const float p = p_[r * kClasses + static_cast<int>(y[r])];
      loss -= std::log(static_cast<double>(std::clamp(p, 1e-7f, 1.0f - 1e-7f)));
    }
    loss /= n;

    // ---- backward ------------------------------------------------------------------------------
    // Softmax and cross-entropy together: for one row, L = -log p_y with p_j = e^{z_j} / sum_k e^{z_k},
    // so log p_y = z_y - log sum_k e^{z_k} and dL/dz_j = p_j - [j = y]. The mean over n rows divides
    // by n:  dz2 = (p - onehot(y)) / n. (No division by a small p: this is why kiln fuses the two.)
    dz2_.resize(p_.size());
    for (int r = 0; r < n; ++r) {
      for (int j = 0; j < kClasses; ++j) {
        dz2_[r * kClasses + j] = (p_[r * kClasses + j] - (j == static_cast<int>(y[r]) ? 1.0f : 0.0f)) / static_cast<float>(n);
      }
    }
    dense_backward(d_, dz2_, W2_, b2_, n, kHidden, kClasses, &dd_);  // dW2 = d^T dz2, db2, dd = dz2 W2^T
    dz1_.resize(dd_.size());
    for (size_t i = 0; i < dd_.size(); ++i) {
      // d = h * keep, so dh = dd * keep; h = max(z1, 0), so dz1 = dh where z1 > 0, else 0.
      dz1_[i] = z1_[i] > 0.0f ? dd_[i] * keep_[i] : 0.0f;
    }
    dense_backward(x, dz1_, W1_, b1_, n, kInputs, kHidden, nullptr);  // dW1 = x^T dz1, db1 (no dx: x is data)

    // ---- Adam ----------------------------------------------------------------------------------
    ++step_;
    for (Parameter* parameter : {&W1_, &b1_, &W2_, &b2_}) adam(*parameter);
    return loss;
  }

  // The class each image is most likely to be (inference: no dropout).
  std::vector<int> predict(const std::vector<float>& x, int n) {
    dense_forward(x, W1_, b1_, n, kInputs, kHidden, z1_);
    for (float& z : z1_) z = std::max(z, 0.0f);
    dense_forward(z1_, W2_, b2_, n, kHidden, kClasses, z2_);
    std::vector<int> classes(n);
    for (int r = 0; r < n; ++r) {
      classes[r] = static_cast<int>(std::max_element(&z2_[r * kClasses], &z2_[r * kClasses] + kClasses) - &z2_[r * kClasses]);
    }
    return classes;
  }

  // The four weight tensors, in kiln's order: dense/kernel, dense/bias, dense_1/kernel, dense_1/bias.
  std::vector<const std::vector<float>*> weights() const { return {&W1_.value, &b1_.value, &W2_.value, &b2_.value}; }

 private:
  // Adam (Kingma and Ba), as Keras computes it. The paper's step, with g the gradient at step t:
  //   m = beta_1 m + (1 - beta_1) g,   v = beta_2 v + (1 - beta_2) g^2     (running moments)
  //   m_hat = m / (1 - beta_1^t),      v_hat = v / (1 - beta_2^t)          (their bias corrected)
  //   w -= lr m_hat / (sqrt(v_hat) + epsilon)
  // Keras folds both corrections into one step size, lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t),
  // and adds epsilon to sqrt(v) rather than to sqrt(v_hat): w -= lr_t m / (sqrt(v) + epsilon).
  // The same step but for where epsilon (1e-7) sits.
  void adam(Parameter& p) const {
    constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEpsilon = 1e-7f;
    const double t = static_cast<double>(step_);
    const auto lr_t = static_cast<float>(learning_rate_ * std::sqrt(1.0 - std::pow(kBeta2, t)) / (1.0 - std::pow(kBeta1, t)));
    for (size_t i = 0; i < p.value.size(); ++i) {
      const float g = p.gradient[i];
      p.m[i] = kBeta1 * p.m[i] + (1.0f - kBeta1) * g;
      p.v[i] = kBeta2 * p.v[i] + (1.0f - kBeta2) * g * g;
      p.value[i] -= lr_t * p.m[i] / (std::sqrt(p.v[i]) + kEpsilon);
    }
  }

  Parameter W1_, b1_, W2_, b2_;
  float rate_;
  uint64_t dropout_seed_, dropout_step_;
  float learning_rate_;
  int64_t step_ = 0;
  // Each step's intermediate values, kept for the backward pass.
  std::vector<float> z1_, h_, keep_, d_, z2_, p_, dz2_, dd_, dz1_;
};

}  // namespace reference
