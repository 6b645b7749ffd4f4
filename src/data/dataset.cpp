// The non-template parts of the pipeline: the sources' factories and the pipeline threads' set-up.
#include "kiln/data/dataset.hpp"

namespace kiln::data {

Dataset<Tensor> from_tensor_slices(Tensor x) {
  if (x.rank() == 0) throw ShapeError("from_tensor_slices: a scalar has no axis 0 to slice");
  return Dataset<Tensor>(std::make_shared<TensorSlicesNode<Tensor>>(std::make_shared<const Tensor>(std::move(x))));
}

Dataset<LabeledData> from_tensor_slices(Tensor x, Tensor y) { return from_tensor_slices(LabeledData{std::move(x), std::move(y), {}}); }

Dataset<LabeledData> from_tensor_slices(Tensor x, Tensor y, Tensor sample_weight) {
  return from_tensor_slices(LabeledData{std::move(x), std::move(y), std::move(sample_weight)});
}

Dataset<LabeledData> from_tensor_slices(LabeledData data) {
  if (data.x.rank() == 0 || data.y.rank() == 0) throw ShapeError("from_tensor_slices: a scalar has no axis 0 to slice");
  if (data.x.rows() != data.y.rows()) {
    throw ShapeError("from_tensor_slices: x has " + std::to_string(data.x.rows()) + " rows but y has " +
                     std::to_string(data.y.rows()) + " (shapes " + data.x.shape().str() + " and " + data.y.shape().str() + ")");
  }
  check_sample_weight(data.sample_weight, data.x.rows(), "from_tensor_slices");
  return Dataset<LabeledData>(std::make_shared<TensorSlicesNode<LabeledData>>(std::make_shared<const LabeledData>(std::move(data))));
}

Dataset<int64_t> range(int64_t stop) { return range(0, stop, 1); }

Dataset<uint64_t> random(std::optional<uint64_t> seed) { return Dataset<uint64_t>(std::make_shared<RandomNode>(seed ? *seed : next_seed())); }

Dataset<int64_t> range(int64_t start, int64_t stop, int64_t step) {
  return Dataset<int64_t>(std::make_shared<RangeNode>(start, stop, step));
}

}  // namespace kiln::data
