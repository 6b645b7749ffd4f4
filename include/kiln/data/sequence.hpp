// kiln/data/sequence.hpp — a random-access source, in the spirit of Keras's PyDataset / Sequence:
// you say how many batches there are and how to make batch i; kiln fetches them on worker threads
// and keeps a queue of ready ones, so your loader gets parallel, prefetched batches with no
// thread code of your own.
//
// Intended usage:
//   1. class MyBatches : public data::Sequence { size(); get(i); on_epoch_end(); };
//   2. auto train = data::from_sequence(std::make_shared<MyBatches>(), {.workers = 2, .shuffle = true});
//   3. model.fit(train, {.epochs = 5});
// get() is called from `workers` threads at once, so it must be safe to call concurrently.
// Batches arrive in index order (or in a per-epoch shuffled order, reproducible under a seed);
// on_epoch_end() runs on the consumer's thread after each complete epoch.
#pragma once

#include "kiln/data/dataset.hpp"

namespace kiln::data {

class Sequence {
 public:
  virtual ~Sequence() = default;
  virtual int64_t size() const = 0;            // batches per epoch (Keras's __len__)
  virtual LabeledData get(int64_t index) = 0;  // batch `index` (Keras's __getitem__)
  virtual void on_epoch_end() {}
};

struct SequenceOptions {
  int64_t workers = 1;          // threads calling get(); Keras's default
  int64_t max_queue_size = 10;  // ready batches kept ahead of training; Keras's default
  bool shuffle = false;         // visit the batches in a new random order every epoch
  std::optional<uint64_t> seed;
};

Dataset<LabeledData> from_sequence(std::shared_ptr<Sequence> sequence, const SequenceOptions& options = {});

}  // namespace kiln::data
