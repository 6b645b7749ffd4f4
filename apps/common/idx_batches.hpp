// apps/common/idx_batches.hpp — the pipelines kiln-mnist and the benchmarks feed the model with:
// tf.data's idiom, from_tensor_slices(x, y) then shuffle, batch and prefetch.
//
// batch() over shuffled from_tensor_slices copies each batch's rows straight from the data set
// (data/node.hpp, Iterator::next_rows): no tensor is made per sample, and the batches come ready
// from the prefetch thread. Training shuffles the whole set every epoch; evaluation keeps its order.
#pragma once

#include <kiln/kiln.hpp>

namespace kiln::apps {

// In a distributed job (distributed.hpp) each rank reads every size()-th sample of the shuffled
// order, in batches of its share of batch_size: the ranks' batches of a step together hold the
// samples one process's batch would, and every rank shuffles alike (the job shares one seed).
inline data::Dataset<LabeledData> training_batches(const data::Dataset<LabeledData>& samples, int64_t batch_size,
                                                   bool prefetch) {
  auto shuffled = samples.shuffle(samples.cardinality());
  auto batches = distributed::active()
                     ? shuffled.shard(distributed::size(), distributed::rank()).batch(batch_size / distributed::size())
                     : shuffled.batch(batch_size);
  return prefetch ? batches.prefetch(AUTOTUNE) : batches;
}

// Distributed, each rank evaluates its shard, and evaluate averages the ranks' figures.
inline data::Dataset<LabeledData> evaluation_batches(const data::Dataset<LabeledData>& samples, int64_t batch_size) {
  if (distributed::active()) {
    return samples.shard(distributed::size(), distributed::rank()).batch(batch_size / distributed::size()).prefetch(AUTOTUNE);
  }
  return samples.batch(batch_size).prefetch(AUTOTUNE);
}

}  // namespace kiln::apps
