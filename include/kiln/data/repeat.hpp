// kiln/data/repeat.hpp — repeat(count) plays its input `count` times (forever when count is -1).
//
// Each repetition starts a fresh iterator of the input, so a shuffle before repeat() reshuffles
// every repetition, as in tf.data. An input that produces nothing ends the repetition at once
// rather than spinning forever. The input's statistics are those of the current repetition (each
// restart replaces the last one's, so they stay bounded). Runs on its consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

namespace kiln::data {

template <class T>
class RepeatNode : public Node<T> {
 public:
  RepeatNode(NodePtr<T> input, int64_t count) : input_(std::move(input)), count_(count) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    return std::make_unique<RepeatIterator>(input_, count_, context);
  }
  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    if (count_ == 0 || input == 0) return 0;
    if (count_ < 0) return kInfiniteCardinality;
    if (input < 0) return input;
    return input * count_;
  }

 private:
  class RepeatIterator : public Iterator<T> {
   public:
    RepeatIterator(NodePtr<T> input, int64_t count, IterationContext& context)
        : input_node_(std::move(input)), count_(count), stats_(context.stats->add_stage("repeat")),
          parent_stats_(context.stats), input_stats_slot_(context.stats->add_child_slot()) {}

    std::optional<T> next() override {
      while (count_ < 0 || repetitions_started_ < count_ || input_) {
        if (!input_) start_repetition();
        if (std::optional<T> element = input_->next()) {
          ++produced_this_repetition_;
          stats_->elements_produced++;
          return element;
        }
        input_.reset();
        if (produced_this_repetition_ == 0) return std::nullopt;  // an empty input repeats to nothing
      }
      return std::nullopt;
    }

   private:
    void start_repetition() {
      input_.reset();  // the last repetition's threads stop before its context goes
      input_context_ = std::make_unique<IterationContext>();
      parent_stats_->set_child(input_stats_slot_, input_context_->stats);
      input_ = input_node_->make_iterator(*input_context_);
      ++repetitions_started_;
      produced_this_repetition_ = 0;
    }

    NodePtr<T> input_node_;
    int64_t count_;
    std::shared_ptr<StageStatistics> stats_;
    std::shared_ptr<PipelineStats> parent_stats_;
    size_t input_stats_slot_;
    std::unique_ptr<IterationContext> input_context_;  // declared before input_: outlives it
    std::unique_ptr<Iterator<T>> input_;
    int64_t repetitions_started_ = 0;
    int64_t produced_this_repetition_ = 0;
  };

  NodePtr<T> input_;
  int64_t count_;
};

}  // namespace kiln::data
