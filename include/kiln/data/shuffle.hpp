// kiln/data/shuffle.hpp — tf.data's shuffle: a buffer of buffer_size elements; each output is a
// uniformly random element of the buffer, whose place is refilled from the input.
//
// So buffer_size >= the data set's size gives a uniform shuffle, and a small buffer only mixes
// nearby elements. With reshuffle_each_iteration (the default) each epoch uses a new order
// derived from the seed and the epoch number; without it every epoch repeats the first order.
// Runs on its consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/random.hpp"

#include <atomic>
#include <vector>

namespace kiln::data {

template <class T>
class ShuffleNode : public Node<T> {
 public:
  ShuffleNode(NodePtr<T> input, int64_t buffer_size, uint64_t seed, bool reshuffle_each_iteration)
      : input_(std::move(input)), buffer_size_(buffer_size), seed_(seed), reshuffle_(reshuffle_each_iteration) {
    if (buffer_size < 1) throw ValueError("shuffle: buffer_size must be at least 1, got " + std::to_string(buffer_size));
  }

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    const uint64_t epoch = epochs_started_++;  // the node is shared; each iteration is one epoch
    const uint64_t epoch_seed = reshuffle_ ? mix64(seed_ + epoch) : seed_;
    auto stats = context.stats->add_stage("shuffle");
    stats->buffer_capacity = buffer_size_;
    return std::make_unique<ShuffleIterator>(input_->make_iterator(context), buffer_size_, epoch_seed, std::move(stats));
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  class ShuffleIterator : public Iterator<T> {
   public:
    ShuffleIterator(std::unique_ptr<Iterator<T>> input, int64_t buffer_size, uint64_t seed,
                    std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), buffer_size_(buffer_size), rng_(seed), stats_(std::move(stats)) {}

    std::optional<T> next() override {
      BusyTimer timer(*stats_);
      int64_t occupancy = 0;
      std::optional<T> element = take(occupancy);
      if (element) record_taken(1, occupancy);
      return element;
    }

    int64_t next_many(int64_t count, std::vector<T>& out) override {
      BusyTimer timer(*stats_);
      int64_t appended = 0, occupancy_sum = 0;
      while (appended < count) {
        std::optional<T> element = take(occupancy_sum);
        if (!element) break;
        out.push_back(std::move(*element));
        ++appended;
      }
      record_taken(appended, occupancy_sum);
      return appended;
    }

   private:
    // Refills the buffer, then takes a random element out of it (nullopt once both are empty),
    // adding the buffer's size before the take to occupancy_sum.
    std::optional<T> take(int64_t& occupancy_sum) {
      while (!input_done_ && static_cast<int64_t>(buffer_.size()) < buffer_size_) {
        std::optional<T> element = input_->next();
        if (!element) {
          input_done_ = true;
          break;
        }
        buffer_.push_back(std::move(*element));
      }
      if (buffer_.empty()) return std::nullopt;
      occupancy_sum += static_cast<int64_t>(buffer_.size());
      // Take a random element; the last one moves into its place, and the next fill refills it.
      const size_t pick = static_cast<size_t>(rng_.below(buffer_.size()));
      T chosen = std::move(buffer_[pick]);
      if (pick + 1 != buffer_.size()) buffer_[pick] = std::move(buffer_.back());
      buffer_.pop_back();
      return chosen;
    }

    void record_taken(int64_t elements, int64_t occupancy_sum) {
      stats_->occupancy_sum += occupancy_sum;
      stats_->occupancy_samples += elements;
      stats_->elements_produced += elements;
    }

    std::unique_ptr<Iterator<T>> input_;
    int64_t buffer_size_;
    Rng rng_;
    std::shared_ptr<StageStatistics> stats_;
    std::vector<T> buffer_;
    bool input_done_ = false;
  };

  NodePtr<T> input_;
  int64_t buffer_size_;
  uint64_t seed_;
  bool reshuffle_;
  mutable std::atomic<uint64_t> epochs_started_{0};
};

}  // namespace kiln::data
