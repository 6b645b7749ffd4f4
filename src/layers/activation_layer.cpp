// Activation layer: forward and backward side by side.
#include "kiln/layers/activation_layer.hpp"

#include "kiln/error.hpp"

namespace kiln::layers {

Shape ActivationLayer::build(const Shape& input_shape) {
  if (activation_ == kiln::Activation::Softmax && input_shape.rank() != 1) {
    throw ShapeError(describe() + " applies softmax over a flat vector of features, got " + input_shape.str() +
                     " (did you forget Flatten?)");
  }
  return input_shape;
}

// y = f(x), element-wise (softmax: per sample)
const Tensor& ActivationLayer::forward(const Tensor& x, bool /*training*/) {
  output_.resize(x.shape());
  output_.matrix() = x.matrix();
  activation_forward(activation_, output_.matrix());
  return output_;
}

// dx = f'(x) * dy, computed from the output y
const Tensor& ActivationLayer::backward(const Tensor& dy) {
  activation_backward(activation_, output_, dy, input_gradient_);
  return input_gradient_;
}

}  // namespace kiln::layers
