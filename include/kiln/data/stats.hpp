// kiln/data/stats.hpp — what a running pipeline measures about itself, stage by stage.
//
// Each stage of a running pipeline registers a StageStatistics and updates it with atomics (its
// own threads and its consumer both write). PipelineStats::report() takes a snapshot any thread may
// read: per stage, the elements produced, the time spent producing them, the buffer's capacity and
// mean occupancy, the time its consumer waited, and its parallelism.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::data {

struct StageStatistics {
  explicit StageStatistics(std::string stage_name) : name(std::move(stage_name)) {}
  const std::string name;                              // "prefetch", "map", "shuffle", ...
  std::atomic<int64_t> elements_produced{0};
  std::atomic<int64_t> busy_nanoseconds{0};            // producing elements, input included
  std::atomic<int64_t> consumer_wait_nanoseconds{0};   // the consumer blocked on an empty buffer
  std::atomic<int64_t> buffer_capacity{0};             // 0 for stages without a buffer
  std::atomic<int64_t> occupancy_sum{0};               // buffer size seen at each take ...
  std::atomic<int64_t> occupancy_samples{0};           // ... and how many takes
  std::atomic<int64_t> parallelism{0};                 // worker threads, 0 for inline stages
  std::atomic<bool> autotuned{false};                  // AUTOTUNE sets its parallelism or buffer
};

// A copy of one stage's figures at one moment.
struct StageReport {
  std::string name;
  int64_t elements_produced = 0;
  double busy_seconds = 0.0;
  double consumer_wait_seconds = 0.0;
  int64_t buffer_capacity = 0;
  double mean_buffer_occupancy = 0.0;
  int64_t parallelism = 0;
  bool autotuned = false;
};

class PipelineStats {
 public:
  std::shared_ptr<StageStatistics> add_stage(std::string name) {
    std::lock_guard lock(mutex_);
    entries_.push_back({std::make_shared<StageStatistics>(std::move(name)), nullptr});
    return entries_.back().stage;
  }

  // A place for the stages of a sub-pipeline that is restarted again and again (repeat()'s input):
  // each restart replaces the previous run's statistics in that place, so they never pile up.
  size_t add_child_slot() {
    std::lock_guard lock(mutex_);
    entries_.push_back({nullptr, nullptr});
    return entries_.size() - 1;
  }
  void set_child(size_t slot, std::shared_ptr<const PipelineStats> child) {
    std::lock_guard lock(mutex_);
    entries_[slot].child = std::move(child);
  }

  // Stages in the order they were started: the consumer-facing stage first, the source last.
  std::vector<StageReport> report() const;

 private:
  struct Entry {
    std::shared_ptr<StageStatistics> stage;    // a stage of this pipeline, or
    std::shared_ptr<const PipelineStats> child;  // the current run of a restarted sub-pipeline
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

// A table of a report, one line per stage, for people.
std::string format_report(const std::vector<StageReport>& report);

// Nanoseconds on the steady clock, for the busy and wait counters.
inline int64_t now_nanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Adds the time from its construction to its destruction to a stage's busy counter.
class BusyTimer {
 public:
  explicit BusyTimer(StageStatistics& stage) : stage_(stage), start_(now_nanoseconds()) {}
  ~BusyTimer() { stage_.busy_nanoseconds += now_nanoseconds() - start_; }
  BusyTimer(const BusyTimer&) = delete;
  BusyTimer& operator=(const BusyTimer&) = delete;

 private:
  StageStatistics& stage_;
  int64_t start_;
};

}  // namespace kiln::data
