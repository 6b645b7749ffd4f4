// Layer's shared helpers.
#include "kiln/layers/layer.hpp"

#include "kiln/error.hpp"

#include <algorithm>

namespace kiln {

int64_t Layer::parameter_count() {
  int64_t count = 0;
  for (const Parameter* parameter : parameters()) count += parameter->size();
  return count;
}

const Tensor& Layer::backward_from_preactivation(const Tensor&) {
  throw Error(describe() + " has no fused activation to skip in backward");
}

void sum_over_rows(const float* rows, int64_t row_count, int64_t columns, float* sums) {
  std::fill_n(sums, columns, 0.0f);
  for (int64_t r = 0; r < row_count; ++r) {
    const float* row = rows + r * columns;
    for (int64_t j = 0; j < columns; ++j) sums[j] += row[j];
  }
}

std::string Layer::describe() const { return type_name() + " '" + name_ + "'"; }

}  // namespace kiln
