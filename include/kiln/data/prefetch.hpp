// kiln/data/prefetch.hpp — prefetch(n): a producer thread runs the stages before it and keeps up to
// n finished elements in a queue, so they are ready when the consumer (training) asks.
//
// As in tf.data, the producer works on the next element while up to n finished ones wait: it waits
// for room only to add what it made, so prefetch(1) already overlaps one element with training.
// Threads: one std::jthread per running iterator, started with it and stopped and joined when the
// iterator is destroyed (end of epoch, early stop, exception). It is a PipelineThread: its own
// loops run on it alone, and while it computes, the model's team leaves it a core. An exception in
// the producer travels through the queue and is rethrown by the consumer's next(). With AUTOTUNE
// the queue's size is set by a PrefetchTuner.
#pragma once

#include "kiln/data/autotune.hpp"
#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/data/pipeline_thread.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stop_token>
#include <thread>

namespace kiln::data {

template <class T>
class PrefetchNode : public Node<T> {
 public:
  PrefetchNode(NodePtr<T> input, int64_t buffer_size) : input_(std::move(input)), buffer_size_(buffer_size) {
    if (buffer_size < 1 && buffer_size != AUTOTUNE) {
      throw ValueError("prefetch: buffer_size must be at least 1, or AUTOTUNE, got " + std::to_string(buffer_size));
    }
  }

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("prefetch");
    return std::make_unique<PrefetchIterator>(input_->make_iterator(context), buffer_size_, std::move(stats));
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  class PrefetchIterator : public Iterator<T> {
   public:
    PrefetchIterator(std::unique_ptr<Iterator<T>> input, int64_t buffer_size, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), autotune_(buffer_size == AUTOTUNE), fixed_capacity_(buffer_size), stats_(std::move(stats)) {
      stats_->buffer_capacity = capacity();
      stats_->parallelism = 1;
      stats_->autotuned = autotune_;
      producer_ = std::jthread([this](std::stop_token stop) { produce(stop); });
    }

    // The jthread member is destroyed first (declared last): it asks the producer to stop, wakes
    // it, and joins it before the queue and the input iterator go away.
    ~PrefetchIterator() override {
      producer_.request_stop();
      space_available_.notify_all();
    }

    std::optional<T> next() override {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && !producer_done_) {
        // Only a wait after the first element counts: before it, the producer has simply not
        // had time to make anything, whatever the buffer's size.
        if (autotune_ && first_taken_) {
          tuner_.on_consumer_starved();
          stats_->buffer_capacity = capacity();
          space_available_.notify_all();
        }
        const int64_t wait_start = now_nanoseconds();
        element_ready_.wait(lock, [this] { return !queue_.empty() || producer_done_; });
        stats_->consumer_wait_nanoseconds += now_nanoseconds() - wait_start;
      }
      stats_->occupancy_sum += static_cast<int64_t>(queue_.size());
      stats_->occupancy_samples++;
      if (queue_.empty()) {  // the producer has finished, and everything it made is taken
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
        return std::nullopt;
      }
      T element = std::move(queue_.front());
      queue_.pop_front();
      first_taken_ = true;
      if (autotune_ && tuner_.on_element_taken(now_nanoseconds())) stats_->buffer_capacity = capacity();
      // A full queue wakes its producer only once it has drained to half (the low-water mark), so a
      // producer that is faster than training makes its elements several at a time, for one wake-up
      // each time: on a busy machine every wake-up costs the team a core for a while.
      if (producer_waits_for_room_ && static_cast<int64_t>(queue_.size()) <= low_water_mark()) {
        // A computing producer parked with a finished element is about to compute the next one.
        if (producer_computes_ && !core_for_producer_) core_for_producer_.emplace();
        space_available_.notify_one();
      }
      return element;
    }

   private:
    int64_t capacity() const { return autotune_ ? tuner_.buffer_size() : fixed_capacity_; }
    int64_t low_water_mark() const { return capacity() / 2; }

    // The input's next element; an exception is caught into `error` (and nullopt returned).
    std::optional<T> next_or_error(std::exception_ptr& error) {
      BusyTimer timer(*stats_);
      try {
        return input_->next();
      } catch (...) {
        error = std::current_exception();
        return std::nullopt;
      }
    }

    void produce(std::stop_token stop) {
      PipelineThread this_thread;
      std::optional<PipelineComputing> handed_over;
      while (!stop.stop_requested()) {
        std::exception_ptr error;
        this_thread.element_begins(std::exchange(handed_over, std::nullopt));
        std::optional<T> element = next_or_error(error);
        this_thread.element_done();
        std::unique_lock lock(mutex_);
        if (!element) {  // the end, or an error: either way the producer is done
          error_ = error;
          break;
        }
        producer_waits_for_room_ = true;
        producer_computes_ = this_thread.computes();
        if (static_cast<int64_t>(queue_.size()) >= capacity()) {
          space_available_.wait(lock, stop, [this] { return static_cast<int64_t>(queue_.size()) <= low_water_mark(); });
        }
        producer_waits_for_room_ = false;
        handed_over = std::exchange(core_for_producer_, std::nullopt);
        if (stop.stop_requested()) break;
        queue_.push_back(std::move(*element));
        stats_->elements_produced++;
        element_ready_.notify_one();
      }
      std::lock_guard lock(mutex_);
      producer_done_ = true;
      element_ready_.notify_all();
    }

    std::unique_ptr<Iterator<T>> input_;  // used by the producer thread only
    const bool autotune_;
    const int64_t fixed_capacity_;
    PrefetchTuner tuner_;  // changed by the consumer, read by both under mutex_
    std::shared_ptr<StageStatistics> stats_;

    std::mutex mutex_;
    std::condition_variable element_ready_;
    std::condition_variable_any space_available_;
    std::deque<T> queue_;
    bool producer_done_ = false;
    bool first_taken_ = false;  // the consumer's, for the tuner
    bool producer_waits_for_room_ = false;
    bool producer_computes_ = false;  // as its PipelineThread last measured
    std::optional<PipelineComputing> core_for_producer_;  // made by the consumer as it frees a slot
    std::exception_ptr error_;  // set by the producer, rethrown by the consumer after the queue drains

    std::jthread producer_;  // last: joined before anything above is destroyed
  };

  NodePtr<T> input_;
  int64_t buffer_size_;
};

}  // namespace kiln::data
