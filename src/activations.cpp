// Element-wise activations: forward in place with the bias fused in, backward from the output.
//
// Loops are plain `for` over a row or a flat array so GCC vectorises them; for_each_share splits
// their rows across the team only when the array is large enough to pay for waking it
// (kParallelMinElements). No `omp simd` on them: GCC 12's simd lowering of std::max(v[i], 0.0f)
// keeps the 0.0f in a per-lane array and gives up, leaving ReLU a scalar loop with a branch that
// mispredicts on half the elements (-fopt-info-vec shows which loops vectorise).
// Tanh stays scalar: glibc's vector tanh needs -ffast-math. Softmax and sigmoid use
// exp_polynomial, which vectorises.
#include "kiln/activations.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

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

// e^x within 1.3 ulp, written so that GCC vectorises a loop of it: std::exp is a call per element
// (glibc's vector versions need -ffast-math), and was most of softmax's time.
//   x = n ln2 + r, with n = round(x / ln2) and |r| <= ln2 / 2, so e^x = 2^n e^r.
//   ln2 is split in a short high part (n * kLn2High is exact) and the rest, so r keeps its bits.
//   e^r by its Taylor series to r^7 / 7!: the next term is below 8e-9 of e^r, under half a ulp.
//   2^n is built in the exponent field. Clamping x keeps n in the normal range: e^-87 is 1.6e-38
//   (where the exact result would be smaller still), e^88 is 1.7e38.
inline float exp_polynomial(float x) {
  constexpr float kLog2e = 1.44269504f;
  constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
  constexpr float kRoundingShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = x * kLog2e + kRoundingShift;  // n sits in the low bits of the mantissa
  const float n = shifted - kRoundingShift;
  const int32_t n_bits = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRoundingShift);
  const float r = (x - n * kLn2High) - n * kLn2Low;
  float e_r = 1.0f / 5040.0f;
  e_r = e_r * r + 1.0f / 720.0f;
  e_r = e_r * r + 1.0f / 120.0f;
  e_r = e_r * r + 1.0f / 24.0f;
  e_r = e_r * r + 1.0f / 6.0f;
  e_r = e_r * r + 0.5f;
  e_r = e_r * r + 1.0f;
  e_r = e_r * r + 1.0f;
  return e_r * std::bit_cast<float>((n_bits + 127) << 23);
}

void add_bias(float* row, const float* bias, int64_t length) {
  if (bias) {
    for (int64_t j = 0; j < length; ++j) row[j] += bias[j];
  }
}

// Numerically stable softmax of consecutive rows, the bias (if any) first: subtracting each row's
// maximum keeps exp() from overflowing. The exponentials are one loop over all the rows, not one
// per row: a classifier's rows are short (10 classes), and a vectorised loop of 10 is mostly its
// start and its remainder. The sums are loops of their own so that the exp loop carries no float
// accumulation, which GCC may not reorder and which would keep it from vectorising.
void softmax_rows(float* values, const float* bias, int64_t rows, int64_t columns) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = values + r * columns;
    add_bias(row, bias, columns);
    const float row_max = *std::max_element(row, row + columns);
    for (int64_t j = 0; j < columns; ++j) row[j] -= row_max;
  }
  for (int64_t i = 0; i < rows * columns; ++i) values[i] = exp_polynomial(values[i]);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = values + r * columns;
    float sum = 0.0f;
    for (int64_t j = 0; j < columns; ++j) sum += row[j];
    const float inverse_sum = 1.0f / sum;
    for (int64_t j = 0; j < columns; ++j) row[j] *= inverse_sum;
  }
}

// Rows of y = f(z + bias), in place. Each row takes its bias (if any) and then its activation
// while it is in L1; softmax takes the rows together (softmax_rows, above).
void forward_rows(Activation activation, float* values, const float* bias, int64_t rows, int64_t columns) {
  if (activation == Activation::Softmax) return softmax_rows(values, bias, rows, columns);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = values + r * columns;
    add_bias(row, bias, columns);
    switch (activation) {
      case Activation::Linear:
      case Activation::Softmax:  // taken above
        break;
      case Activation::ReLU:
        for (int64_t j = 0; j < columns; ++j) row[j] = std::max(row[j], 0.0f);
        break;
      case Activation::Sigmoid:
        for (int64_t j = 0; j < columns; ++j) row[j] = 1.0f / (1.0f + exp_polynomial(-row[j]));
        break;
      case Activation::Tanh:
        for (int64_t j = 0; j < columns; ++j) row[j] = std::tanh(row[j]);
        break;
    }
  }
}

// Rows of dz from the same rows of y (the forward output) and dy.
void backward_rows(Activation activation, const float* out, const float* g, float* d, int64_t rows, int64_t columns) {
  const int64_t n = rows * columns;
  switch (activation) {
    case Activation::Linear:
      for (int64_t i = 0; i < n; ++i) d[i] = g[i];
      return;
    case Activation::ReLU:  // y > 0 exactly where z > 0
      for (int64_t i = 0; i < n; ++i) d[i] = out[i] > 0.0f ? g[i] : 0.0f;
      return;
    case Activation::Sigmoid:  // dy/dz = y (1 - y)
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * out[i] * (1.0f - out[i]);
      return;
    case Activation::Tanh:  // dy/dz = 1 - y^2
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * (1.0f - out[i] * out[i]);
      return;
    case Activation::Softmax:  // dz = y * (dy - <dy, y>) per row
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

}  // namespace

void activation_forward(Activation activation, MatrixMap values, const float* bias) {
  if (activation == Activation::Linear && !bias) return;
  float* v = values.data();
  const int64_t columns = values.cols();
  for_each_share(values.rows(), values.size() >= kParallelMinElements, [&](int64_t begin, int64_t end) {
    forward_rows(activation, v + begin * columns, bias, end - begin, columns);
  });
}

void activation_backward(Activation activation, const Tensor& y, const Tensor& dy, Tensor& dz) {
  dz.resize(dy.shape());
  const float* out = y.data();
  const float* g = dy.data();
  float* d = dz.data();
  const int64_t columns = dy.row_size();
  for_each_share(dy.rows(), dy.size() >= kParallelMinElements, [&](int64_t begin, int64_t end) {
    backward_rows(activation, out + begin * columns, g + begin * columns, d + begin * columns, end - begin, columns);
  });
}

}  // namespace kiln
