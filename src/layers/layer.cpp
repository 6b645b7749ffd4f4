// Layer's shared helpers.
#include "kiln/layers/layer.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>
#include <array>

namespace kiln {

int64_t Layer::parameter_count() {
  int64_t count = 0;
  for (const Parameter* parameter : parameters()) count += parameter->size();
  return count;
}

const Tensor& Layer::backward_from_preactivation(const Tensor&) {
  throw Error(describe() + " has no fused activation to skip in backward");
}

namespace {

void add_rows(const float* rows, int64_t begin, int64_t end, int64_t columns, float* sums) {
  std::fill_n(sums, columns, 0.0f);
  for (int64_t r = begin; r < end; ++r) {
    const float* row = rows + r * columns;
    for (int64_t j = 0; j < columns; ++j) sums[j] += row[j];
  }
}

}  // namespace

void sum_over_rows(const float* rows, int64_t row_count, int64_t columns, float* sums) {
  constexpr int64_t kSlices = 16, kMaxSlicedColumns = 256;  // the slices' sums fit in 16 KB of stack
  if (row_count * columns < kParallelMinElements || columns > kMaxSlicedColumns) {
    add_rows(rows, 0, row_count, columns, sums);
    return;
  }
  std::array<float, kSlices * kMaxSlicedColumns> slice_sums;
  float* partial = slice_sums.data();
  parallel_tiles(kSlices, [=](int64_t first, int64_t end) {
    for (int64_t slice = first; slice < end; ++slice) {
      add_rows(rows, slice * row_count / kSlices, (slice + 1) * row_count / kSlices, columns, partial + slice * columns);
    }
  });
  std::copy_n(partial, columns, sums);
  for (int64_t slice = 1; slice < kSlices; ++slice) {
    for (int64_t j = 0; j < columns; ++j) sums[j] += partial[slice * columns + j];
  }
}

std::string Layer::describe() const { return type_name() + " '" + name_ + "'"; }

}  // namespace kiln
