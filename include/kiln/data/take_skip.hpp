// kiln/data/take_skip.hpp — take(n) keeps the first n elements, skip(n) drops them.
// As in tf.data, take(-1) keeps everything and skip(-1) drops everything. Both run on their
// consumer's thread; take stops pulling from its input once it has enough.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

#include <algorithm>

namespace kiln::data {

template <class T>
class TakeNode : public Node<T> {
 public:
  TakeNode(NodePtr<T> input, int64_t count) : input_(std::move(input)), count_(count) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("take");
    return std::make_unique<TakeIterator>(input_->make_iterator(context), count_, std::move(stats));
  }
  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    if (count_ < 0) return input;
    if (input == kInfiniteCardinality) return count_;
    if (input == kUnknownCardinality) return kUnknownCardinality;
    return std::min(input, count_);
  }

 private:
  class TakeIterator : public Iterator<T> {
   public:
    TakeIterator(std::unique_ptr<Iterator<T>> input, int64_t count, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), remaining_(count), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      if (remaining_ == 0) return std::nullopt;
      std::optional<T> element = input_->next();
      if (!element) return std::nullopt;
      if (remaining_ > 0) --remaining_;  // negative: take everything
      stats_->elements_produced++;
      return element;
    }

   private:
    std::unique_ptr<Iterator<T>> input_;
    int64_t remaining_;
    std::shared_ptr<StageStatistics> stats_;
  };

  NodePtr<T> input_;
  int64_t count_;
};

template <class T>
class SkipNode : public Node<T> {
 public:
  SkipNode(NodePtr<T> input, int64_t count) : input_(std::move(input)), count_(count) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("skip");
    return std::make_unique<SkipIterator>(input_->make_iterator(context), count_, std::move(stats));
  }
  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    if (input == kInfiniteCardinality) return count_ < 0 ? 0 : kInfiniteCardinality;
    if (count_ < 0) return 0;
    if (input == kUnknownCardinality) return kUnknownCardinality;
    return std::max<int64_t>(0, input - count_);
  }

 private:
  class SkipIterator : public Iterator<T> {
   public:
    SkipIterator(std::unique_ptr<Iterator<T>> input, int64_t count, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), to_skip_(count), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      if (to_skip_ < 0) return std::nullopt;  // skip(-1): nothing is left
      for (; to_skip_ > 0; --to_skip_) {
        if (!input_->next()) {
          to_skip_ = 0;
          return std::nullopt;
        }
      }
      std::optional<T> element = input_->next();
      if (element) stats_->elements_produced++;
      return element;
    }

   private:
    std::unique_ptr<Iterator<T>> input_;
    int64_t to_skip_;
    std::shared_ptr<StageStatistics> stats_;
  };

  NodePtr<T> input_;
  int64_t count_;
};

}  // namespace kiln::data
