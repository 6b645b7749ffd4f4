// kiln/data/map.hpp — map(fn, num_parallel_calls, deterministic): applies fn to every element.
//
// num_parallel_calls = 1 runs fn on the consumer's thread. More (or AUTOTUNE) starts a pool of
// std::jthreads owned by the running iterator: each takes the next input element (one at a time,
// under a lock, as the input is not thread-safe), applies fn, and files the result under the
// element's position. With deterministic = true the consumer receives results in input order, the
// same order as a serial map, whatever the parallelism; otherwise in the order they finish.
// At most twice the worker count are in flight, which bounds memory. An exception thrown by fn (or
// by the input) is rethrown at the consumer as a PipelineError naming the element's position.
// With AUTOTUNE a ParallelismTuner, run by the consumer, sets how many workers may take work; at
// its parallelism of 1 the consumer maps each element itself, as a serial map does, because handing
// one element to a worker and waiting for it costs more than a small fn (microseconds per element).
#pragma once

#include "kiln/data/autotune.hpp"
#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/data/pipeline_thread.hpp"
#include "kiln/data/prefetch.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::data {

template <class In, class Out>
class MapNode : public Node<Out> {
 public:
  MapNode(NodePtr<In> input, std::function<Out(In)> fn, int64_t num_parallel_calls, bool deterministic)
      : input_(std::move(input)), fn_(std::move(fn)), num_parallel_calls_(num_parallel_calls), deterministic_(deterministic) {
    if (num_parallel_calls < 1 && num_parallel_calls != AUTOTUNE) {
      throw ValueError("map: num_parallel_calls must be at least 1, or AUTOTUNE, got " + std::to_string(num_parallel_calls));
    }
    if (num_parallel_calls != AUTOTUNE) {
      num_parallel_calls_ = capped_thread_count(num_parallel_calls, max_pipeline_threads(), "map: num_parallel_calls");
    }
  }

  std::unique_ptr<Iterator<Out>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("map");
    auto input = input_->make_iterator(context);
    if (num_parallel_calls_ == 1) return std::make_unique<SerialMapIterator>(std::move(input), fn_, std::move(stats));
    return std::make_unique<ParallelMapIterator>(std::move(input), fn_, num_parallel_calls_, deterministic_, std::move(stats));
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  class SerialMapIterator : public Iterator<Out> {
   public:
    SerialMapIterator(std::unique_ptr<Iterator<In>> input, std::function<Out(In)> fn, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), fn_(std::move(fn)), stats_(std::move(stats)) {}
    std::optional<Out> next() override {
      BusyTimer timer(*stats_);
      std::optional<In> element = input_->next();
      if (!element) return std::nullopt;
      const int64_t index = stats_->elements_produced.load();
      try {
        std::optional<Out> result(fn_(std::move(*element)));
        stats_->elements_produced++;
        return result;
      } catch (...) {
        rethrow_with_position("map", index);
      }
    }

   private:
    std::unique_ptr<Iterator<In>> input_;
    std::function<Out(In)> fn_;
    std::shared_ptr<StageStatistics> stats_;
  };

  class ParallelMapIterator : public Iterator<Out> {
   public:
    ParallelMapIterator(std::unique_ptr<Iterator<In>> input, std::function<Out(In)> fn, int64_t num_parallel_calls,
                        bool deterministic, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), fn_(std::move(fn)), deterministic_(deterministic), stats_(std::move(stats)),
          autotune_(num_parallel_calls == AUTOTUNE),
          tuner_(/*initial=*/1, /*maximum=*/available_cores(), /*cores=*/available_cores(), process_cpu_nanoseconds) {
      const int64_t worker_count = autotune_ ? available_cores() : num_parallel_calls;
      active_workers_ = autotune_ ? workers_for(tuner_.parallelism()) : worker_count;
      stats_->parallelism = autotune_ ? tuner_.parallelism() : worker_count;
      stats_->autotuned = autotune_;
      stats_->buffer_capacity = window();
      for (int64_t w = 0; w < worker_count; ++w) {
        workers_.emplace_back([this, w](std::stop_token stop) { work(stop, w); });
      }
    }

    ~ParallelMapIterator() override {
      for (std::jthread& worker : workers_) worker.request_stop();
      work_available_.notify_all();
      workers_.clear();  // joins every worker before the members they use go away
    }

    std::optional<Out> next() override {
      std::unique_lock lock(mutex_);
      if (failed_) return std::nullopt;  // results that were in flight past an error are dropped
      if (active_workers_ == 0 && in_flight_ == 0 && results_.empty() && !finished()) return next_inline(lock);
      const int64_t wait_start = now_nanoseconds();
      if (!(result_available() || finished())) {
        consumer_waiting_ = true;
        result_ready_.wait(lock, [this] { return result_available() || finished(); });
        consumer_waiting_ = false;
      }
      const int64_t now = now_nanoseconds();
      stats_->consumer_wait_nanoseconds += now - wait_start;
      stats_->occupancy_sum += static_cast<int64_t>(results_.size());
      stats_->occupancy_samples++;
      if (autotune_ && tuner_.on_element_taken(now, now - wait_start)) apply_tuned_parallelism();
      if (!result_available()) return std::nullopt;  // finished
      auto taken = deterministic_ ? results_.find(next_output_index_) : results_.begin();
      Result result = std::move(taken->second);
      results_.erase(taken);
      ++next_output_index_;
      --in_flight_;
      if (workers_waiting_ > 0 && in_flight_ <= window() / 2) work_available_.notify_all();
      if (result.error) {
        failed_ = true;  // nothing after an error is delivered
        input_count_ = next_output_index_;
        std::rethrow_exception(result.error);
      }
      return std::move(result.value);
    }

   private:
    struct Result {
      std::optional<Out> value;
      std::exception_ptr error;
    };

    // Elements taken from the input and not yet delivered, at most: two per worker, and 8 more so
    // that the consumer wakes the workers only once the window has drained to half, several
    // elements at a time. Small elements (a per-image map of microseconds) would otherwise cost a
    // wake-up of a worker and of the consumer each, more than the work itself, and the map would
    // run slower on two workers than on one.
    int64_t window() const { return 2 * active_workers_ + 8; }

    // AUTOTUNE's parallelism 1 is the consumer itself (no worker takes work); from 2 on, that many workers.
    static int64_t workers_for(int64_t parallelism) { return parallelism == 1 ? 0 : parallelism; }

    // Under mutex_: follow the tuner's new parallelism.
    void apply_tuned_parallelism() {
      active_workers_ = workers_for(tuner_.parallelism());
      stats_->parallelism = tuner_.parallelism();
      stats_->buffer_capacity = window();
      work_available_.notify_all();
    }

    // AUTOTUNE at parallelism 1, with nothing in flight: the consumer maps the next element itself.
    // The time that takes is what the tuner counts as waiting: more workers could take it off.
    std::optional<Out> next_inline(std::unique_lock<std::mutex>& lock) {
      lock.unlock();  // no worker takes work now; the input has its own lock
      const int64_t start = now_nanoseconds();
      int64_t index = 0;
      std::exception_ptr error;
      std::optional<In> element = take_input(index, error);
      Result result{std::nullopt, error};
      if (element) result = apply(std::move(*element), index);
      const int64_t now = now_nanoseconds();
      lock.lock();
      stats_->busy_nanoseconds += now - start;
      if (!element && !error) {  // the end of the input
        input_count_ = index;
        work_available_.notify_all();  // the idle workers can leave
        return std::nullopt;
      }
      ++next_output_index_;
      if (result.error) {
        failed_ = true;  // nothing after an error is delivered
        input_count_ = next_output_index_;
        work_available_.notify_all();
        std::rethrow_exception(result.error);
      }
      stats_->elements_produced++;
      if (tuner_.on_element_taken(now, now - start)) apply_tuned_parallelism();
      return std::move(result.value);
    }

    // Under mutex_: is the element the consumer wants next ready?
    bool result_available() const {
      if (deterministic_) return results_.count(next_output_index_) > 0;
      return !results_.empty();
    }
    // Under mutex_: has every input element been delivered?
    bool finished() const { return input_count_ >= 0 && next_output_index_ >= input_count_; }

    // The next input element and its position, under the input lock; nullopt past the end or on
    // an error (caught into `error`: after one, the input's state is unknown, so it is not read again).
    std::optional<In> take_input(int64_t& index, std::exception_ptr& error) {
      std::lock_guard input_lock(input_mutex_);
      index = next_input_index_++;
      if (input_exhausted_) return std::nullopt;
      try {
        std::optional<In> element = input_->next();
        input_exhausted_ = !element;
        return element;
      } catch (...) {
        error = std::current_exception();
        input_exhausted_ = true;
        return std::nullopt;
      }
    }

    // fn(element), or the exception it threw, named by the element's position.
    Result apply(In&& element, int64_t index) {
      try {
        return Result{std::optional<Out>(fn_(std::move(element))), nullptr};
      } catch (...) {
        try {
          rethrow_with_position("map", index);
        } catch (...) {
          return Result{std::nullopt, std::current_exception()};
        }
      }
    }

    void work(std::stop_token stop, int64_t worker_index) {
      PipelineThread this_thread;
      while (true) {
        {
          std::unique_lock lock(mutex_);
          ++workers_waiting_;
          work_available_.wait(lock, stop, [&] {
            return input_count_ >= 0 || (worker_index < active_workers_ && in_flight_ < window());
          });
          --workers_waiting_;
          if (stop.stop_requested() || input_count_ >= 0) return;
          ++in_flight_;
        }
        int64_t index = 0;
        std::exception_ptr error;
        this_thread.element_begins();
        std::optional<In> element = take_input(index, error);
        Result result;
        if (error) {
          result.error = error;
        } else if (element) {
          const int64_t busy_start = now_nanoseconds();
          result = apply(std::move(*element), index);
          stats_->busy_nanoseconds += now_nanoseconds() - busy_start;
        }
        this_thread.element_done();
        std::lock_guard lock(mutex_);
        if (!element && !error) {  // past the end: this index holds nothing
          --in_flight_;
          if (input_count_ < 0 || index < input_count_) input_count_ = index;
          result_ready_.notify_all();
          work_available_.notify_all();
          return;
        }
        if (error && (input_count_ < 0 || index + 1 < input_count_)) input_count_ = index + 1;
        results_.emplace(index, std::move(result));
        if (!error) stats_->elements_produced++;
        if (consumer_waiting_) result_ready_.notify_all();
      }
    }

    std::unique_ptr<Iterator<In>> input_;
    std::function<Out(In)> fn_;
    const bool deterministic_;
    std::shared_ptr<StageStatistics> stats_;
    const bool autotune_;
    ParallelismTuner tuner_;  // the consumer's

    std::mutex input_mutex_;  // guards input_, next_input_index_, input_exhausted_
    int64_t next_input_index_ = 0;
    bool input_exhausted_ = false;

    std::mutex mutex_;  // guards everything below
    std::condition_variable result_ready_;
    std::condition_variable_any work_available_;
    std::map<int64_t, Result> results_;  // finished elements by input position
    int64_t next_output_index_ = 0;
    int64_t in_flight_ = 0;              // taken from the input and not yet delivered
    int64_t active_workers_ = 1;         // workers with an index below this may take work
    int64_t input_count_ = -1;           // known once the input ends (or fails)
    bool failed_ = false;                // an error was delivered: the epoch is over
    bool consumer_waiting_ = false;      // only then does a finished element wake the consumer
    int64_t workers_waiting_ = 0;        // workers blocked on work_available_

    std::vector<std::jthread> workers_;  // last: stopped and joined first
  };

  NodePtr<In> input_;
  std::function<Out(In)> fn_;
  int64_t num_parallel_calls_;
  bool deterministic_;
};

}  // namespace kiln::data
