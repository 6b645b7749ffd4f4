// Element-wise activations: forward in place with the bias fused in, backward from the output.
//
// Loops are plain `for` over a row or a flat array so GCC vectorises them; OpenMP splits them only when
// the array is large enough to pay for waking the team (kParallelMinElements). They say
// `parallel for`, not `parallel for simd`: GCC 12's simd lowering of std::max(v[i], 0.0f) keeps
// the 0.0f in a per-lane array and gives up, leaving ReLU a scalar loop with a branch that
// mispredicts on half the elements (-fopt-info-vec shows which loops vectorise).
// Sigmoid and tanh stay scalar: glibc's vector exp and tanh need -ffast-math.
#include "kiln/activations.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>
#include <cmath>

namespace kiln {

std::string_view activation_name(Activation activation) {
  switch (activation) {
    case Activation::Linear: return "linear";
    case Activation::ReLU: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
    case Activation::Softmax: return "softmax";
  }
  return "unknown";
}

Activation activation_from_name(std::string_view name) {
  for (Activation a : {Activation::Linear, Activation::ReLU, Activation::Sigmoid, Activation::Tanh, Activation::Softmax}) {
    if (activation_name(a) == name) return a;
  }
  throw ValueError("unknown activation '" + std::string(name) + "' (expected linear, relu, sigmoid, tanh or softmax)");
}

namespace {

// Numerically stable softmax of one row: subtracting the row's maximum keeps exp() from overflowing.
void softmax_row(float* row, int64_t length) {
  const float row_max = *std::max_element(row, row + length);
  float sum = 0.0f;
  for (int64_t j = 0; j < length; ++j) {
    row[j] = std::exp(row[j] - row_max);
    sum += row[j];
  }
  const float inverse_sum = 1.0f / sum;
  for (int64_t j = 0; j < length; ++j) row[j] *= inverse_sum;
}

// One row: the bias first (if any), then the activation, while the row is in L1.
void forward_row(Activation activation, float* row, const float* bias, int64_t length) {
  if (bias) {
    for (int64_t j = 0; j < length; ++j) row[j] += bias[j];
  }
  switch (activation) {
    case Activation::Linear:
      return;
    case Activation::ReLU:
      for (int64_t j = 0; j < length; ++j) row[j] = std::max(row[j], 0.0f);
      return;
    case Activation::Sigmoid:
      for (int64_t j = 0; j < length; ++j) row[j] = 1.0f / (1.0f + std::exp(-row[j]));
      return;
    case Activation::Tanh:
      for (int64_t j = 0; j < length; ++j) row[j] = std::tanh(row[j]);
      return;
    case Activation::Softmax:
      softmax_row(row, length);
      return;
  }
}

}  // namespace

void activation_forward(Activation activation, MatrixMap values, const float* bias) {
  if (activation == Activation::Linear && !bias) return;
  float* v = values.data();
  const int64_t rows = values.rows(), columns = values.cols();
#pragma omp parallel for if (values.size() >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) forward_row(activation, v + r * columns, bias, columns);
}

void activation_backward(Activation activation, const Tensor& y, const Tensor& dy, Tensor& dz) {
  dz.resize(dy.shape());
  const float* out = y.data();
  const float* g = dy.data();
  float* d = dz.data();
  const int64_t n = dy.size();
  const bool parallel = n >= kParallelMinElements;
  switch (activation) {
    case Activation::Linear:
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < n; ++i) d[i] = g[i];
      return;
    case Activation::ReLU:  // y > 0 exactly where z > 0
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < n; ++i) d[i] = out[i] > 0.0f ? g[i] : 0.0f;
      return;
    case Activation::Sigmoid:  // dy/dz = y (1 - y)
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * out[i] * (1.0f - out[i]);
      return;
    case Activation::Tanh:  // dy/dz = 1 - y^2
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * (1.0f - out[i] * out[i]);
      return;
    case Activation::Softmax: {  // dz = y * (dy - <dy, y>) per row
      const int64_t rows = dy.rows(), columns = dy.row_size();
#pragma omp parallel for if (parallel)
      for (int64_t r = 0; r < rows; ++r) {
        const float* y_row = out + r * columns;
        const float* g_row = g + r * columns;
        float* d_row = d + r * columns;
        float dot = 0.0f;
        for (int64_t j = 0; j < columns; ++j) dot += g_row[j] * y_row[j];
        for (int64_t j = 0; j < columns; ++j) d_row[j] = y_row[j] * (g_row[j] - dot);
      }
      return;
    }
  }
}

}  // namespace kiln
