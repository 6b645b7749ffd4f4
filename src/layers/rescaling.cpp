// Rescaling: forward and backward side by side.
#include "kiln/layers/rescaling.hpp"

#include "kiln/error.hpp"

namespace kiln::layers {

Shape Rescaling::build(const Shape& input_shape) {
  if (declared_input_shape() && !(*declared_input_shape() == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared_input_shape()->str() + ", got " +
                     input_shape.str());
  }
  return input_shape;
}

// x: [batch, ...] -> y = x * scale + offset, same shape
const Tensor& Rescaling::forward(const Tensor& x, bool /*training*/) {
  output_.resize(x.shape());
  output_.matrix().array() = x.matrix().array() * scale_ + offset_;
  return output_;
}

// dx = dy * scale (the offset does not depend on x)
const Tensor& Rescaling::backward(const Tensor& dy) {
  input_gradient_.resize(dy.shape());
  input_gradient_.matrix() = dy.matrix() * scale_;
  return input_gradient_;
}

}  // namespace kiln::layers
