// kiln/data/pipeline_thread.hpp — how every pipeline thread (prefetch producer, parallel-map
// worker) behaves towards the model's OpenMP team, which must keep its cores.
//
// 1. Its own OpenMP team is one thread, so pipeline work never starts a second team.
// 2. Once it proves CPU-heavy (busy more than a fifth of a 20 ms window), it lowers its scheduling
//    priority to the lowest (nice 19) for the rest of the epoch. The reason: the model's team
//    meets at a barrier after every parallel loop, so one team thread losing its core to a busy
//    pipeline thread stalls all of them for a scheduler time slice (milliseconds, against
//    microseconds of work). At nice 19 the pipeline gets the cores whenever the team is not using
//    them and gives them back at once. A thread that mostly waits (for a disk, a sleep) keeps its
//    normal priority, so it is never starved of the few microseconds it needs.
// Used only by the thread it describes.
#pragma once

#include <cstdint>

namespace kiln::data {

// CPU time used so far by the calling thread, and by the whole process, in nanoseconds.
int64_t thread_cpu_nanoseconds();
int64_t process_cpu_nanoseconds();

class PipelineThread {
 public:
  PipelineThread();  // call first thing on the new thread
  // After each element: cheap (one clock read) except once per window.
  void element_done();
  bool lowered_priority() const { return lowered_; }

 private:
  static constexpr int64_t kWindowNanoseconds = 20'000'000;
  static constexpr double kBusyShare = 0.2;
  int64_t window_start_ns_;
  int64_t window_start_cpu_ns_;
  bool lowered_ = false;
};

}  // namespace kiln::data
