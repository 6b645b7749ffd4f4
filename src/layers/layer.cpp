// Layer's shared helpers.
#include "kiln/layers/layer.hpp"

#include "kiln/error.hpp"

namespace kiln {

int64_t Layer::parameter_count() {
  int64_t count = 0;
  for (const Parameter* parameter : parameters()) count += parameter->size();
  return count;
}

const Tensor& Layer::backward_from_preactivation(const Tensor&) {
  throw Error(describe() + " has no fused activation to skip in backward");
}

std::string Layer::describe() const { return type_name() + " '" + name_ + "'"; }

}  // namespace kiln
