// kiln/data/sources.hpp — where a pipeline's elements come from: tensors in memory, a range of
// integers, or a user's generator function.
//
// Each is a Node whose iterator produces elements on its consumer's thread. The tensors behind
// from_tensor_slices are shared, not copied, by every iteration.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

#include <algorithm>
#include <functional>

namespace kiln::data {

// Slices of tensors along axis 0: element i is row i (of x, or of both x and y).
template <class T>
class TensorSlicesNode : public Node<T> {
 public:
  explicit TensorSlicesNode(std::shared_ptr<const T> source) : source_(std::move(source)) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    return std::make_unique<SliceIterator>(source_, context.stats->add_stage("tensor_slices"));
  }
  int64_t cardinality() const override { return row_count(*source_); }

 private:
  class SliceIterator : public Iterator<T> {
   public:
    SliceIterator(std::shared_ptr<const T> source, std::shared_ptr<StageStatistics> stats)
        : source_(std::move(source)), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      if (index_ >= row_count(*source_)) return std::nullopt;
      stats_->elements_produced++;
      return row_of(*source_, index_++);
    }
    const T* row_source() const override { return source_.get(); }
    int64_t next_rows(int64_t count, std::vector<int64_t>& rows) override {
      const int64_t taken = std::min(count, row_count(*source_) - index_);
      for (int64_t i = 0; i < taken; ++i) rows.push_back(index_++);
      stats_->elements_produced += taken;
      return taken;
    }

   private:
    std::shared_ptr<const T> source_;
    std::shared_ptr<StageStatistics> stats_;
    int64_t index_ = 0;
  };

  std::shared_ptr<const T> source_;
};

// start, start + step, ... up to (not including) stop, as Python's range.
class RangeNode : public Node<int64_t> {
 public:
  RangeNode(int64_t start, int64_t stop, int64_t step);
  std::unique_ptr<Iterator<int64_t>> make_iterator(IterationContext& context) const override;
  int64_t cardinality() const override;

 private:
  int64_t start_, stop_, step_;
};

// tf.data's Dataset.random with rerandomize_each_iteration: an endless stream of random 64-bit
// values, a new stream each epoch, numbered as IterationContext::epoch says (as a shuffle's).
class RandomNode : public Node<uint64_t> {
 public:
  explicit RandomNode(uint64_t seed) : seed_(seed) {}
  std::unique_ptr<Iterator<uint64_t>> make_iterator(IterationContext& context) const override;
  int64_t cardinality() const override { return kInfiniteCardinality; }

 private:
  uint64_t seed_;
  mutable std::atomic<uint64_t> epochs_started_{0};
};

// A generator yields elements until it returns nullopt. A fresh one is made for each epoch.
template <class T>
using Generator = std::function<std::optional<T>()>;

template <class T>
class GeneratorNode : public Node<T> {
 public:
  explicit GeneratorNode(std::function<Generator<T>()> make_generator) : make_generator_(std::move(make_generator)) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    return std::make_unique<GeneratorIterator>(make_generator_(), context.stats->add_stage("from_generator"));
  }
  int64_t cardinality() const override { return kUnknownCardinality; }

 private:
  class GeneratorIterator : public Iterator<T> {
   public:
    GeneratorIterator(Generator<T> generator, std::shared_ptr<StageStatistics> stats)
        : generator_(std::move(generator)), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      try {
        std::optional<T> element = generator_();
        if (element) stats_->elements_produced++;
        return element;
      } catch (...) {
        rethrow_with_position("from_generator", stats_->elements_produced.load());
      }
    }

   private:
    Generator<T> generator_;
    std::shared_ptr<StageStatistics> stats_;
  };

  std::function<Generator<T>()> make_generator_;
};

}  // namespace kiln::data
