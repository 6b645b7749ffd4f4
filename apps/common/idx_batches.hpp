// apps/common/idx_batches.hpp — the pipelines kiln-mnist and the benchmarks feed the model with:
// images kept as bytes, batches gathered and converted to float32 on the pipeline's thread.
//
// Training: shuffle indices, not images (the buffer holds integers, not copies of the data), then
// gather each batch's rows. Evaluation: the rows in order. Both share the bytes, never copy them.
#pragma once

#include <kiln/kiln.hpp>

#include <memory>

namespace kiln::apps {

inline data::Dataset<LabeledData> training_batches(std::shared_ptr<const datasets::ByteImages> images,
                                                   int64_t batch_size, bool prefetch) {
  const int64_t count = images->size();
  auto batches = data::range(count).shuffle(count).batch(batch_size).map(
      [images](const std::vector<int64_t>& rows) { return images->gather(rows); });
  return prefetch ? batches.prefetch(AUTOTUNE) : batches;
}

inline data::Dataset<LabeledData> evaluation_batches(std::shared_ptr<const datasets::ByteImages> images,
                                                     int64_t batch_size) {
  return data::range(images->size()).batch(batch_size).map(
      [images](const std::vector<int64_t>& rows) { return images->gather(rows); });
}

}  // namespace kiln::apps
