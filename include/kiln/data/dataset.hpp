// kiln/data/dataset.hpp — Dataset<T>: tf.data's Dataset in C++.
//
// Intended usage:
//   1. auto train = data::from_tensor_slices(x, y)          // a source
//                       .shuffle(10000, /*seed=*/42)         // ops, each returning a new Dataset
//                       .map(augment, AUTOTUNE)
//                       .batch(64)
//                       .prefetch(AUTOTUNE);
//   2. for (const LabeledData& batch : train) { ... }        // one epoch; or model.fit(train, ...)
// A Dataset is a lazy, immutable description (a chain of Nodes, node.hpp): copying it is cheap and
// building it runs nothing. Each iteration runs one epoch in a fresh pipeline whose threads belong
// to the iteration and are stopped and joined when it is destroyed. Elements are Tensors,
// LabeledData (x, y) pairs, int64_t (from range), or any type a map returns.
#pragma once

#include "kiln/data/batch.hpp"
#include "kiln/data/cache.hpp"
#include "kiln/data/diagnose.hpp"
#include "kiln/data/element.hpp"
#include "kiln/data/filter.hpp"
#include "kiln/data/map.hpp"
#include "kiln/data/node.hpp"
#include "kiln/data/pipeline_thread.hpp"
#include "kiln/data/prefetch.hpp"
#include "kiln/data/repeat.hpp"
#include "kiln/data/shuffle.hpp"
#include "kiln/data/sources.hpp"
#include "kiln/data/shard.hpp"
#include "kiln/data/take_skip.hpp"
#include "kiln/data/zip_concatenate.hpp"
#include "kiln/random.hpp"

#include <functional>
#include <iterator>
#include <optional>
#include <type_traits>

namespace kiln::data {

// One running pipeline: one epoch of a Dataset. Use it as a range, or call next() directly.
template <class T>
class Iteration {
 public:
  // `epoch`, when the consumer counts epochs (fit does), is which epoch this is: see IterationContext.
  explicit Iteration(const NodePtr<T>& node, uint64_t epoch = 0) : context_(std::make_unique<IterationContext>()) {
    context_->epoch = epoch;
    iterator_ = node->make_iterator(*context_);
  }

  // The next element, or nullopt at the end. Its clock readings (two per call) are what
  // diagnose() needs: how long the consumer spent here, against the whole span of the calls.
  std::optional<T> next() {
    const int64_t start = now_nanoseconds();
    if (first_call_ns_ < 0) {
      first_call_ns_ = start;
      process_cpu_at_first_call_ns_ = process_cpu_nanoseconds();
      machine_busy_at_first_call_s_ = machine_busy_seconds();
      thread_cpu_at_first_call_ns_ = thread_cpu_nanoseconds();
    }
    std::optional<T> element = iterator_->next();
    last_return_ns_ = now_nanoseconds();
    input_ns_ += last_return_ns_ - start;
    if (!element && process_cpu_at_end_ns_ < 0) {
      process_cpu_at_end_ns_ = process_cpu_nanoseconds();
      machine_busy_at_end_s_ = machine_busy_seconds();
      thread_cpu_at_end_ns_ = thread_cpu_nanoseconds();
    }
    return element;
  }

  // Per-stage figures so far (stats.hpp), the consumer-facing stage first.
  std::vector<StageReport> statistics() const { return context_->stats->report(); }

  // The consumer's side so far: the span of its next() calls and the time spent inside them.
  ConsumerTimes consumer_times() const {
    if (first_call_ns_ < 0) return {};
    const bool ended = process_cpu_at_end_ns_ >= 0;
    const int64_t cpu_end = ended ? process_cpu_at_end_ns_ : process_cpu_nanoseconds();
    const double machine_end = ended ? machine_busy_at_end_s_ : machine_busy_seconds();
    const int64_t thread_cpu_end = ended ? thread_cpu_at_end_ns_ : thread_cpu_nanoseconds();
    const bool machine_known = machine_busy_at_first_call_s_ >= 0.0 && machine_end >= 0.0;
    return {static_cast<double>(last_return_ns_ - first_call_ns_) * 1e-9, static_cast<double>(input_ns_) * 1e-9,
            static_cast<double>(cpu_end - process_cpu_at_first_call_ns_) * 1e-9,
            machine_known ? machine_end - machine_busy_at_first_call_s_ : -1.0,
            static_cast<double>(thread_cpu_end - thread_cpu_at_first_call_ns_) * 1e-9};
  }

  // A range-for iterator. It shares ownership of the Iteration, so `for (auto& e : dataset)` keeps
  // the running pipeline alive for exactly as long as the loop.
  class InputIterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    InputIterator() = default;
    explicit InputIterator(std::shared_ptr<Iteration> iteration) : iteration_(std::move(iteration)) { ++*this; }
    T& operator*() const { return *current_; }
    T* operator->() const { return &*current_; }
    InputIterator& operator++() {
      current_ = iteration_->next();
      if (!current_) iteration_.reset();  // the end: stop and join the pipeline's threads now
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return iteration_ == nullptr; }

   private:
    std::shared_ptr<Iteration> iteration_;
    mutable std::optional<T> current_;
  };
  // Iterates this Iteration, which the caller keeps alive.
  InputIterator begin() { return InputIterator(std::shared_ptr<Iteration>(this, [](Iteration*) {})); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::unique_ptr<IterationContext> context_;  // outlives the iterators, which refer to it
  std::unique_ptr<Iterator<T>> iterator_;
  int64_t first_call_ns_ = -1, last_return_ns_ = -1, input_ns_ = 0;
  int64_t process_cpu_at_first_call_ns_ = -1, process_cpu_at_end_ns_ = -1;
  int64_t thread_cpu_at_first_call_ns_ = -1, thread_cpu_at_end_ns_ = -1;  // the consumer's thread
  double machine_busy_at_first_call_s_ = -1.0, machine_busy_at_end_s_ = -1.0;
};

// The pipeline doctor (diagnose.hpp) on what one iteration has measured so far.
template <class T>
Diagnosis diagnose(const Iteration<T>& iteration) {
  return diagnose(iteration.statistics(), iteration.consumer_times(), available_cores());
}

template <class T>
class Dataset {
 public:
  using element_type = T;

  explicit Dataset(NodePtr<T> node) : node_(std::move(node)) {}

  // ---- iterating ---------------------------------------------------------------------------------

  // Starts one epoch. `for (auto& e : dataset)` does the same through begin()/end().
  Iteration<T> iterate() const { return Iteration<T>(node_); }
  typename Iteration<T>::InputIterator begin() const {
    return typename Iteration<T>::InputIterator(std::make_shared<Iteration<T>>(node_));
  }
  std::default_sentinel_t end() const { return {}; }

  // Number of elements, or kInfiniteCardinality / kUnknownCardinality, as tf.data reports it.
  int64_t cardinality() const { return node_->cardinality(); }

  // ---- ops: each returns a new Dataset; this one is unchanged -------------------------------------

  // fn(T) -> U for every element. num_parallel_calls: 1 (on the consumer's thread), n worker
  // threads, or AUTOTUNE. deterministic: results in input order even when parallel.
  template <class Fn>
  auto map(Fn fn, int64_t num_parallel_calls = 1, bool deterministic = true) const {
    using Out = std::decay_t<std::invoke_result_t<Fn&, T>>;
    return Dataset<Out>(std::make_shared<MapNode<T, Out>>(node_, std::function<Out(T)>(std::move(fn)), num_parallel_calls,
                                                          deterministic));
  }

  Dataset filter(std::function<bool(const T&)> predicate) const {
    return Dataset(std::make_shared<FilterNode<T>>(node_, std::move(predicate)));
  }

  // tf.data's buffer shuffle. Without a seed, one is drawn from kiln's global seed generator
  // (random.hpp), so set_random_seed() makes it repeatable too.
  Dataset shuffle(int64_t buffer_size, std::optional<uint64_t> seed = std::nullopt,
                  bool reshuffle_each_iteration = true) const {
    return Dataset(std::make_shared<ShuffleNode<T>>(node_, buffer_size, seed ? *seed : next_seed(), reshuffle_each_iteration));
  }

  Dataset<BatchOf<T>> batch(int64_t batch_size, bool drop_remainder = false) const {
    return Dataset<BatchOf<T>>(std::make_shared<BatchNode<T>>(node_, batch_size, drop_remainder));
  }

  auto unbatch() const {
    return Dataset<UnbatchedOf<T>>(std::make_shared<UnbatchNode<T>>(node_));
  }

  // In memory when path is empty, else in that file.
  Dataset cache(const std::string& path = "") const {
    if (path.empty()) return Dataset(std::make_shared<MemoryCacheNode<T>>(node_));
    return Dataset(std::make_shared<FileCacheNode<T>>(node_, path));
  }

  Dataset prefetch(int64_t buffer_size) const { return Dataset(std::make_shared<PrefetchNode<T>>(node_, buffer_size)); }

  // count = -1 repeats forever.
  Dataset repeat(int64_t count = -1) const { return Dataset(std::make_shared<RepeatNode<T>>(node_, count)); }

  Dataset take(int64_t count) const { return Dataset(std::make_shared<TakeNode<T>>(node_, count)); }
  Dataset skip(int64_t count) const { return Dataset(std::make_shared<SkipNode<T>>(node_, count)); }
  // Elements i with i % num_shards == index: one process's share of a distributed fit
  // (shard(distributed::size(), distributed::rank())).
  Dataset shard(int64_t num_shards, int64_t index) const {
    return Dataset(std::make_shared<ShardNode<T>>(node_, num_shards, index));
  }

  Dataset concatenate(const Dataset& other) const {
    return Dataset(std::make_shared<ConcatenateNode<T>>(node_, other.node_));
  }

  const NodePtr<T>& node() const { return node_; }

 private:
  NodePtr<T> node_;
};

// ---- sources ---------------------------------------------------------------------------------------

// Element i is row i of x (the tensor is shared, not copied).
Dataset<Tensor> from_tensor_slices(Tensor x);
// Element i is (row i of x, row i of y), and with sample weights ([n] or [n, 1]) Keras's
// (x, y, sample_weight): fit and evaluate weigh each sample's loss and metrics by it.
Dataset<LabeledData> from_tensor_slices(Tensor x, Tensor y);
Dataset<LabeledData> from_tensor_slices(Tensor x, Tensor y, Tensor sample_weight);
Dataset<LabeledData> from_tensor_slices(LabeledData data);

// range(stop), range(start, stop), range(start, stop, step), as Python's range.
Dataset<int64_t> range(int64_t stop);
Dataset<int64_t> range(int64_t start, int64_t stop, int64_t step = 1);

// tf.data's Dataset.random: endless random 64-bit values, a new sequence each epoch. Zipped with
// a dataset, it gives each element a seed for the random image ops that a seeded run repeats, in
// a parallel map too, and that a fit resumed at epoch k draws as the uninterrupted run did:
//   zip(batches, data::random(seed)).map([](std::pair<LabeledData, uint64_t> batch_and_seed) {
//     auto& [batch, seed] = batch_and_seed;
//     batch.x = image::random_flip_left_right(batch.x, seed);
//     return std::move(batch);
//   })
// Without a seed, one is drawn from kiln's global seed generator (random.hpp).
Dataset<uint64_t> random(std::optional<uint64_t> seed = std::nullopt);

// make_generator is called once per epoch; the generator it returns yields elements until it
// returns nullopt.
template <class T>
Dataset<T> from_generator(std::function<Generator<T>()> make_generator) {
  return Dataset<T>(std::make_shared<GeneratorNode<T>>(std::move(make_generator)));
}

// Pairs the elements of a and b; stops at the shorter.
template <class A, class B>
Dataset<std::pair<A, B>> zip(const Dataset<A>& a, const Dataset<B>& b) {
  return Dataset<std::pair<A, B>>(std::make_shared<ZipNode<A, B>>(a.node(), b.node()));
}

}  // namespace kiln::data
