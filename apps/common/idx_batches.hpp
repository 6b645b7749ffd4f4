// apps/common/idx_batches.hpp — the pipelines kiln-mnist and the benchmarks feed the model with:
// tf.data's idiom, from_tensor_slices(x, y) then shuffle, batch and prefetch.
//
// batch() over shuffled from_tensor_slices copies each batch's rows straight from the data set
// (data/node.hpp, Iterator::next_rows): no tensor is made per sample, and the batches come ready
// from the prefetch thread. Training shuffles the whole set every epoch; evaluation keeps its order.
#pragma once

#include <kiln/kiln.hpp>

namespace kiln::apps {

inline data::Dataset<LabeledData> training_batches(const data::Dataset<LabeledData>& samples, int64_t batch_size,
                                                   bool prefetch) {
  auto batches = samples.shuffle(samples.cardinality()).batch(batch_size);
  return prefetch ? batches.prefetch(AUTOTUNE) : batches;
}

inline data::Dataset<LabeledData> evaluation_batches(const data::Dataset<LabeledData>& samples, int64_t batch_size) {
  return samples.batch(batch_size).prefetch(AUTOTUNE);
}

}  // namespace kiln::apps
