// Flatten: forward and backward side by side.
#include "kiln/layers/flatten.hpp"

#include "kiln/error.hpp"

namespace kiln::layers {

Shape Flatten::build(const Shape& input_shape) {
  if (declared_input_shape() && !(*declared_input_shape() == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared_input_shape()->str() + ", got " +
                     input_shape.str());
  }
  input_shape_ = input_shape;
  return Shape{input_shape.element_count()};
}

// x: [batch, d1, d2, ...] -> [batch, d1 * d2 * ...]
const Tensor& Flatten::forward(const Tensor& x, bool /*training*/) {
  output_.resize(Shape{x.rows(), x.row_size()});
  output_.matrix() = x.matrix();
  return output_;
}

// dy: [batch, d1 * d2 * ...] -> [batch, d1, d2, ...]
const Tensor& Flatten::backward(const Tensor& dy) {
  input_gradient_.resize(input_shape_.with_batch(dy.rows()));
  input_gradient_.matrix() = dy.matrix();
  return input_gradient_;
}

}  // namespace kiln::layers
