// Dense: forward and backward side by side.
#include "kiln/layers/dense.hpp"

#include "kiln/error.hpp"
#include "kiln/gemm.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <cmath>

namespace kiln::layers {

Dense::Dense(int64_t units, Activation activation, int64_t input_dim)
    : Layer(input_dim > 0 ? std::optional<Shape>(Shape{input_dim}) : std::nullopt),
      units_(units),
      activation_(activation) {
  if (units <= 0) throw ValueError("Dense needs a positive number of units, got " + std::to_string(units));
  if (input_dim < 0) throw ValueError("Dense's input_dim must be positive, got " + std::to_string(input_dim));
}

Shape Dense::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  const std::string expected = declared ? std::to_string((*declared)[0]) + " features" : "a flat vector of features";
  if (input_shape.rank() != 1 || (declared && !(*declared == input_shape))) {
    const std::string hint = input_shape.rank() > 1 ? " (did you forget Flatten?)" : "";
    throw ShapeError(describe() + " expects input of " + expected + ", got " + input_shape.str() + hint);
  }
  input_dim_ = input_shape[0];
  kernel_.shape = Shape{input_dim_, units_};
  bias_.shape = Shape{units_};
  return Shape{units_};
}

// Glorot uniform: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)), Keras's default.
void Dense::initialize(uint64_t seed) {
  Rng rng(seed);
  const float limit = std::sqrt(6.0f / static_cast<float>(input_dim_ + units_));
  for (int64_t i = 0; i < kernel_.size(); ++i) kernel_.value[i] = rng.uniform(-limit, limit);
  for (int64_t i = 0; i < bias_.size(); ++i) bias_.value[i] = 0.0f;
}

// x: [batch, in]  ->  y = f(x W + b): [batch, units]
const Tensor& Dense::forward(const Tensor& x, bool /*training*/) {
  if (x.rank() != 2 || x.dim(1) != input_dim_) {
    throw ShapeError(describe() + " expects input of " + std::to_string(input_dim_) + " features, got " +
                     x.shape().without_first_axis().str());
  }
  input_ = &x;
  output_.resize(Shape{x.rows(), units_});
  MatrixMap y = output_.matrix();
  gemm(x.matrix(), Operand::AsIs, kernel(), Operand::AsIs, y);
  // Bias and activation in one pass over y, a row at a time while it is in L1. (Writing the bias
  // first with Eigen's replicate() and letting the GEMM accumulate onto it looks free, but
  // replicate() is evaluated one coefficient at a time, with a division each: 100x slower.)
  activation_forward(activation_, y, bias_.value);
  return output_;
}

// dy: [batch, units]  ->  dz = f'(z) * dy, then the same as backward_from_preactivation
const Tensor& Dense::backward(const Tensor& dy) {
  activation_backward(activation_, output_, dy, preactivation_gradient_);
  return backward_from_preactivation(preactivation_gradient_);
}

// dz = dL/dz: [batch, units]. Since z[r, j] = sum_k x[r, k] W[k, j] + b[j], each weight reaches
// the loss through every row's z:
//   dL/dW[k, j] = sum_r dz[r, j] x[r, k]   ->  dW = x^T dz       [in, units]
//   dL/db[j]    = sum_r dz[r, j]           ->  db = sum_rows dz  [units]
//   dL/dx[r, k] = sum_j dz[r, j] W[k, j]   ->  dx = dz W^T       [batch, in]  (skipped for the first layer)
// examples/reference/plain_model.hpp computes the same with plain loops.
const Tensor& Dense::backward_from_preactivation(const Tensor& dz) {
  const ConstMatrixMap dz_matrix = dz.matrix();
  gemm(input_->matrix(), Operand::Transposed, dz_matrix, Operand::AsIs, MatrixMap(kernel_.gradient, input_dim_, units_));
  sum_over_rows(dz.data(), dz.rows(), units_, bias_.gradient);
  if (!input_gradient_needed()) return input_gradient_;
  input_gradient_.resize(Shape{dz.rows(), input_dim_});
  gemm(dz_matrix, Operand::AsIs, kernel(), Operand::Transposed, input_gradient_.matrix());
  return input_gradient_;
}

}  // namespace kiln::layers
