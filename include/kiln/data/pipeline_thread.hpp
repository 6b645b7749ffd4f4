// kiln/data/pipeline_thread.hpp — how every pipeline thread (prefetch producer, parallel-map
// worker) shares the machine with the model's team.
//
// 1. Its own loops run on it alone (its team is one thread), so pipeline work never starts a
//    second team.
// 2. While it computes an element it holds a PipelineComputing (parallel.hpp): the team then runs
//    its loops with one thread fewer and its idle helpers sleep, so the pipeline thread has a core
//    at once instead of preempting a team thread in the middle of its tiles. A thread that mostly
//    waits (for a disk, a sleep) holds none, since it needs no core while it waits: whether a
//    thread computes is measured over each window of its elements (its CPU time against the time
//    its elements took).
// 3. It is a normal thread, never a batch thread (it would inherit that policy from fit's), so
//    when its read or wait ends it preempts a team thread and runs at once.
// Used only by the thread it describes.
#pragma once

#include "kiln/parallel.hpp"

#include <cstdint>
#include <optional>

namespace kiln::data {

// CPU time used so far by the calling thread, and by the whole process, in nanoseconds.
int64_t thread_cpu_nanoseconds();
int64_t process_cpu_nanoseconds();

class PipelineThread {
 public:
  PipelineThread();  // call first thing on the new thread
  // Call around each element the thread makes: cheap (one clock read) except once per window.
  // `handed_over` is a PipelineComputing made for it by the thread that woke it, if any.
  void element_begins(std::optional<PipelineComputing> handed_over = std::nullopt);
  void element_done();
  bool computes() const { return computes_; }

 private:
  static constexpr int64_t kWindowNanoseconds = 20'000'000;
  static constexpr double kComputingShare = 0.5;  // CPU time / time spent making elements
  bool computes_ = true;  // until measured: a new thread's first elements are usually computed
  std::optional<PipelineComputing> computing_;
  int64_t element_start_ns_ = 0;
  int64_t window_element_ns_ = 0;
  int64_t window_start_ns_;
  int64_t window_start_cpu_ns_;
};

}  // namespace kiln::data
