// kiln/data/node.hpp — the two halves of every pipeline stage: a Node describes it, an Iterator runs it.
//
// A Dataset is a chain of immutable Nodes. Iterating it asks the last Node for an Iterator, which
// asks its input Node for one, and so on back to the source: one running pipeline per epoch.
// An Iterator is used by one thread at a time (its consumer); stages that run threads of their own
// (prefetch, parallel map, Sequence) own them and stop and join them in their destructor.
#pragma once

#include "kiln/data/stats.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

// tf.data's special cardinalities.
inline constexpr int64_t kInfiniteCardinality = -1;
inline constexpr int64_t kUnknownCardinality = -2;

// Passed to prefetch() or map() to let the autotuner choose the buffer size or parallelism.
inline constexpr int64_t AUTOTUNE = -1;

// What every iterator of one running pipeline shares: its statistics and autotuner.
struct IterationContext {
  std::shared_ptr<PipelineStats> stats = std::make_shared<PipelineStats>();
  // The consumer's number for this epoch (fit's epoch index; 0 when nobody counts). A shuffle uses
  // the larger of it and the number of iterations it has started, so a fit resumed at epoch k
  // shuffles as the uninterrupted run did in epoch k, and a second fit from epoch 0 still
  // reshuffles.
  uint64_t epoch = 0;
};

// The epoch number a node's new iteration stands for: the larger of the consumer's epoch and the
// count of iterations the node has started (`started`, shared by the node's iterations, which
// this advances). A stage whose randomness changes each epoch (shuffle, random) draws from it.
inline uint64_t start_epoch(std::atomic<uint64_t>& started, const IterationContext& context) {
  uint64_t seen = started.load();
  uint64_t epoch = 0;
  do {
    epoch = std::max(seen, context.epoch);
  } while (!started.compare_exchange_weak(seen, epoch + 1));
  return epoch;
}

template <class T>
class Iterator {
 public:
  virtual ~Iterator() = default;
  // The next element, or nullopt at the end of the epoch. Rethrows, on the consumer's thread,
  // any exception raised while producing it (by a map function, a generator, a file read...).
  virtual std::optional<T> next() = 0;

  // Appends up to `count` next elements to `out` and returns how many: fewer only at the end of
  // the epoch. batch() takes its elements this way. A stage whose elements are cheap (shuffle's
  // are often bare indices) overrides it to read its clock and update its counters once per call
  // instead of once per element, which would otherwise cost more than the elements.
  virtual int64_t next_many(int64_t count, std::vector<T>& out) {
    int64_t appended = 0;
    while (appended < count) {
      std::optional<T> element = next();
      if (!element) break;
      out.push_back(std::move(*element));
      ++appended;
    }
    return appended;
  }

  // Rows of a source in memory. A stage whose elements are the rows of one tensor (or of one
  // (x, y) pair) can hand out the rows' numbers instead of copies of the rows: batch() then
  // copies each batch's rows straight from the source, and no tensor is made per sample, which
  // is what makes from_tensor_slices(x, y).shuffle(b).batch(n) as fast as fit(x, y). row_source()
  // is that source, or nullptr for stages that cannot (the default); next_rows appends up to
  // `count` row numbers, in the order next() would have delivered the rows, and returns how many.
  virtual const T* row_source() const { return nullptr; }
  virtual int64_t next_rows(int64_t /*count*/, std::vector<int64_t>& /*rows*/) { return 0; }
};

template <class T>
class Node {
 public:
  virtual ~Node() = default;
  virtual std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const = 0;
  // Number of elements, or kInfiniteCardinality / kUnknownCardinality, as tf.data reports it.
  virtual int64_t cardinality() const = 0;
};

template <class T>
using NodePtr = std::shared_ptr<const Node<T>>;

}  // namespace kiln::data
