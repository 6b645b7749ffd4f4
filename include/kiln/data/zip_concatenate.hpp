// kiln/data/zip_concatenate.hpp — the two ways of combining data sets.
// zip(a, b) pairs their elements and stops at the shorter; a.concatenate(b) plays a, then b.
// Both run on their consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

#include <algorithm>
#include <utility>

namespace kiln::data {

template <class A, class B>
class ZipNode : public Node<std::pair<A, B>> {
 public:
  ZipNode(NodePtr<A> first, NodePtr<B> second) : first_(std::move(first)), second_(std::move(second)) {}

  std::unique_ptr<Iterator<std::pair<A, B>>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("zip");
    auto first = first_->make_iterator(context);  // in turn: argument order is unspecified
    auto second = second_->make_iterator(context);
    return std::make_unique<ZipIterator>(std::move(first), std::move(second), std::move(stats));
  }
  int64_t cardinality() const override {
    const int64_t a = first_->cardinality(), b = second_->cardinality();
    if (a == 0 || b == 0) return 0;
    if (a == kUnknownCardinality || b == kUnknownCardinality) return kUnknownCardinality;
    if (a == kInfiniteCardinality) return b;
    if (b == kInfiniteCardinality) return a;
    return std::min(a, b);
  }

 private:
  class ZipIterator : public Iterator<std::pair<A, B>> {
   public:
    ZipIterator(std::unique_ptr<Iterator<A>> first, std::unique_ptr<Iterator<B>> second,
                std::shared_ptr<StageStatistics> stats)
        : first_(std::move(first)), second_(std::move(second)), stats_(std::move(stats)) {}
    std::optional<std::pair<A, B>> next() override {
      std::optional<A> a = first_->next();
      if (!a) return std::nullopt;
      std::optional<B> b = second_->next();
      if (!b) return std::nullopt;
      stats_->elements_produced++;
      return std::pair<A, B>(std::move(*a), std::move(*b));
    }

   private:
    std::unique_ptr<Iterator<A>> first_;
    std::unique_ptr<Iterator<B>> second_;
    std::shared_ptr<StageStatistics> stats_;
  };

  NodePtr<A> first_;
  NodePtr<B> second_;
};

template <class T>
class ConcatenateNode : public Node<T> {
 public:
  ConcatenateNode(NodePtr<T> first, NodePtr<T> second) : first_(std::move(first)), second_(std::move(second)) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("concatenate");  // before its inputs', as every stage
    return std::make_unique<ConcatenateIterator>(first_->make_iterator(context), second_, context, std::move(stats));
  }
  int64_t cardinality() const override {
    const int64_t a = first_->cardinality(), b = second_->cardinality();
    if (a == kInfiniteCardinality || b == kInfiniteCardinality) return kInfiniteCardinality;
    if (a == kUnknownCardinality || b == kUnknownCardinality) return kUnknownCardinality;
    return a + b;
  }

 private:
  class ConcatenateIterator : public Iterator<T> {
   public:
    ConcatenateIterator(std::unique_ptr<Iterator<T>> first, NodePtr<T> second, IterationContext& context,
                        std::shared_ptr<StageStatistics> stats)
        : current_(std::move(first)), second_(std::move(second)), context_(context), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      std::optional<T> element = current_->next();
      if (!element && second_) {  // the first is done: start the second, lazily
        current_ = second_->make_iterator(context_);
        second_.reset();
        element = current_->next();
      }
      if (element) stats_->elements_produced++;
      return element;
    }

   private:
    std::unique_ptr<Iterator<T>> current_;
    NodePtr<T> second_;
    IterationContext& context_;
    std::shared_ptr<StageStatistics> stats_;
  };

  NodePtr<T> first_;
  NodePtr<T> second_;
};

}  // namespace kiln::data
