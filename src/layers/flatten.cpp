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

// x: [batch, d1, d2, ...] -> [batch, d1 * d2 * ...]. Row-major elements are already in that
// order, so the output is a view of x: no copy (which would cost a pass over the batch, and make
// the next layer's threads fetch the copy from the core that wrote it).
const Tensor& Flatten::forward(const Tensor& x, bool /*training*/) {
  output_.view(x, Shape{x.rows(), x.row_size()});
  return output_;
}

// dy: [batch, d1 * d2 * ...] -> [batch, d1, d2, ...], a view of dy likewise.
const Tensor& Flatten::backward(const Tensor& dy) {
  input_gradient_.view(dy, input_shape_.with_batch(dy.rows()));
  return input_gradient_;
}

}  // namespace kiln::layers
