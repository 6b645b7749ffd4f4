// kiln/data/filter.hpp — keeps the elements for which a predicate is true (tf.data's filter).
// Runs on its consumer's thread. Cardinality becomes unknown, even for an infinite input (the
// predicate may reject everything after some point), as tf.data reports it.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

#include <functional>

namespace kiln::data {

template <class T>
class FilterNode : public Node<T> {
 public:
  FilterNode(NodePtr<T> input, std::function<bool(const T&)> predicate)
      : input_(std::move(input)), predicate_(std::move(predicate)) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("filter");
    return std::make_unique<FilterIterator>(input_->make_iterator(context), predicate_, std::move(stats));
  }
  int64_t cardinality() const override { return input_->cardinality() == 0 ? 0 : kUnknownCardinality; }

 private:
  class FilterIterator : public Iterator<T> {
   public:
    FilterIterator(std::unique_ptr<Iterator<T>> input, std::function<bool(const T&)> predicate,
                   std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), predicate_(std::move(predicate)), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      BusyTimer timer(*stats_);
      while (std::optional<T> element = input_->next()) {
        bool keep = false;
        try {
          keep = predicate_(*element);
        } catch (...) {
          rethrow_with_position("filter", examined_);
        }
        ++examined_;
        if (keep) {
          stats_->elements_produced++;
          return element;
        }
      }
      return std::nullopt;
    }

   private:
    std::unique_ptr<Iterator<T>> input_;
    std::function<bool(const T&)> predicate_;
    std::shared_ptr<StageStatistics> stats_;
    int64_t examined_ = 0;
  };

  NodePtr<T> input_;
  std::function<bool(const T&)> predicate_;
};

}  // namespace kiln::data
