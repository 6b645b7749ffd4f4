// Reshape: the target shape worked out and checked once, then views forward and backward.
#include "kiln/layers/reshape.hpp"

#include "kiln/error.hpp"

#include <span>
#include <string>

namespace kiln::layers {

Shape Reshape::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  if (declared && !(*declared == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared->str() + ", got " + input_shape.str());
  }
  std::string target = "(";
  for (size_t axis = 0; axis < target_shape_.size(); ++axis) target += (axis ? ", " : "") + std::to_string(target_shape_[axis]);
  target += ")";
  if (target_shape_.empty() || target_shape_.size() > static_cast<size_t>(Shape::kMaxRank)) {
    throw ValueError(describe() + ": target_shape needs 1 to " + std::to_string(Shape::kMaxRank) + " axes, got " + target);
  }
  int unknown_axis = -1;
  int64_t known = 1;
  for (int axis = 0; axis < static_cast<int>(target_shape_.size()); ++axis) {
    const int64_t dim = target_shape_[static_cast<size_t>(axis)];
    if (dim == -1 && unknown_axis < 0) {
      unknown_axis = axis;
    } else if (dim <= 0) {
      throw ValueError(describe() + ": target_shape axes must be positive, with at most one -1; got " + target);
    } else {
      known *= dim;
    }
  }
  const int64_t elements = input_shape.element_count();
  std::vector<int64_t> dims = target_shape_;
  if (unknown_axis >= 0) dims[static_cast<size_t>(unknown_axis)] = elements % known == 0 ? elements / known : 0;
  const Shape output{std::span<const int64_t>(dims)};
  if (output.element_count() != elements) {
    throw ShapeError(describe() + " cannot reshape " + input_shape.str() + " (" + std::to_string(elements) +
                     " values) to " + target);
  }
  input_shape_ = input_shape;
  output_shape_ = output;
  return output;
}

const Tensor& Reshape::forward(const Tensor& x, bool /*training*/) {
  if (!(x.shape().without_first_axis() == input_shape_)) {
    throw ShapeError(describe() + " expects input of shape " + input_shape_.str() + ", got " +
                     x.shape().without_first_axis().str());
  }
  output_.view(x, output_shape_.with_batch(x.rows()));
  return output_;
}

const Tensor& Reshape::backward(const Tensor& dy) {
  input_gradient_.view(dy, input_shape_.with_batch(dy.rows()));
  return input_gradient_;
}

}  // namespace kiln::layers
