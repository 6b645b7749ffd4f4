// kiln/data/shuffle.hpp — tf.data's shuffle: a buffer of buffer_size elements; each output is a
// uniformly random element of the buffer, whose place is refilled from the input.
//
// So buffer_size >= the data set's size gives a uniform shuffle, and a small buffer only mixes
// nearby elements. With reshuffle_each_iteration (the default) each epoch uses a new order
// derived from the seed and the epoch number; without it every epoch repeats the first order.
// Over rows of a source in memory (from_tensor_slices) it shuffles the rows' numbers, with the
// same buffer and the same random draws, and hands them on the same way (Iterator::next_rows).
// Runs on its consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <atomic>
#include <type_traits>
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
    // The node is shared; each iteration is one epoch, numbered as IterationContext::epoch says.
    const uint64_t epoch = start_epoch(epochs_started_, context);
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
        : input_(std::move(input)), row_source_(input_->row_source()), buffer_size_(buffer_size), rng_(seed),
          stats_(std::move(stats)) {}

    std::optional<T> next() override {
      BusyTimer timer(*stats_);
      int64_t occupancy = 0;
      std::optional<T> element;
      if (row_source_) {
        if constexpr (kHasRows) {
          if (std::optional<int64_t> row = take(row_buffer_, occupancy)) element = row_of(*row_source_, *row);
        }
      } else {
        element = take(buffer_, occupancy);
      }
      if (element) record_taken(1, occupancy);
      return element;
    }

    int64_t next_many(int64_t count, std::vector<T>& out) override {
      if (row_source_) return Iterator<T>::next_many(count, out);
      return take_many(buffer_, count, out);
    }

    const T* row_source() const override { return row_source_; }
    int64_t next_rows(int64_t count, std::vector<int64_t>& rows) override {
      return row_source_ ? take_many(row_buffer_, count, rows) : 0;
    }

   private:
    // Only tensors and (x, y) pairs come as rows of a source.
    static constexpr bool kHasRows = std::is_same_v<T, Tensor> || std::is_same_v<T, LabeledData>;

    template <class U>
    int64_t take_many(std::vector<U>& buffer, int64_t count, std::vector<U>& out) {
      BusyTimer timer(*stats_);
      int64_t appended = 0, occupancy_sum = 0;
      while (appended < count) {
        std::optional<U> element = take(buffer, occupancy_sum);
        if (!element) break;
        out.push_back(std::move(*element));
        ++appended;
      }
      record_taken(appended, occupancy_sum);
      return appended;
    }

    // Refills the buffer, then takes a random element out of it (nullopt once both are empty),
    // adding the buffer's size before the take to occupancy_sum. The buffer holds elements, or
    // over a row source the rows' numbers.
    template <class U>
    std::optional<U> take(std::vector<U>& buffer, int64_t& occupancy_sum) {
      while (!input_done_ && static_cast<int64_t>(buffer.size()) < buffer_size_) {
        if (row_source_) {
          input_done_ = input_->next_rows(buffer_size_ - static_cast<int64_t>(row_buffer_.size()), row_buffer_) == 0;
        } else if (std::optional<T> element = input_->next()) {
          buffer_.push_back(std::move(*element));
        } else {
          input_done_ = true;
        }
      }
      if (buffer.empty()) return std::nullopt;
      occupancy_sum += static_cast<int64_t>(buffer.size());
      // Take a random element; the last one moves into its place, and the next fill refills it.
      const size_t pick = static_cast<size_t>(rng_.below(buffer.size()));
      U chosen = std::move(buffer[pick]);
      if (pick + 1 != buffer.size()) buffer[pick] = std::move(buffer.back());
      buffer.pop_back();
      return chosen;
    }

    void record_taken(int64_t elements, int64_t occupancy_sum) {
      stats_->occupancy_sum += occupancy_sum;
      stats_->occupancy_samples += elements;
      stats_->elements_produced += elements;
    }

    std::unique_ptr<Iterator<T>> input_;
    const T* row_source_;  // the input's row source, if it has one
    int64_t buffer_size_;
    Rng rng_;
    std::shared_ptr<StageStatistics> stats_;
    std::vector<T> buffer_;
    std::vector<int64_t> row_buffer_;  // over a row source: the buffered rows' numbers
    bool input_done_ = false;
  };

  NodePtr<T> input_;
  int64_t buffer_size_;
  uint64_t seed_;
  bool reshuffle_;
  mutable std::atomic<uint64_t> epochs_started_{0};
};

}  // namespace kiln::data
