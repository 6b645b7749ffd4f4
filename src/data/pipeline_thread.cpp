// Pipeline threads: one thread to a team, and a core of their own while they compute.
#include "kiln/data/pipeline_thread.hpp"

#include "kiln/data/stats.hpp"

#include <sched.h>
#include <time.h>

namespace kiln::data {
namespace {

int64_t cpu_clock_nanoseconds(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// A thread inherits its creator's policy, and fit's thread is a batch thread while it trains
// (BatchScheduling): a pipeline thread started by fit would be one too, and a batch thread woken
// by its finished read or a free buffer slot waits for a team thread's time slice to run out
// (tens of microseconds a wake-up) instead of running at once. A pipeline thread is normal.
void schedule_as_normal_thread() {
#ifdef SCHED_BATCH
  if (sched_getscheduler(0) != SCHED_BATCH) return;
  const sched_param parameters{};
  sched_setscheduler(0, SCHED_OTHER, &parameters);
#endif
}

}  // namespace

int64_t thread_cpu_nanoseconds() { return cpu_clock_nanoseconds(CLOCK_THREAD_CPUTIME_ID); }
int64_t process_cpu_nanoseconds() { return cpu_clock_nanoseconds(CLOCK_PROCESS_CPUTIME_ID); }

PipelineThread::PipelineThread() : window_start_ns_(now_nanoseconds()), window_start_cpu_ns_(thread_cpu_nanoseconds()) {
  set_num_threads(1);
  schedule_as_normal_thread();
}

void PipelineThread::element_begins(std::optional<PipelineComputing> handed_over) {
  element_start_ns_ = now_nanoseconds();
  if (handed_over) {
    computing_.emplace(std::move(*handed_over));
  } else if (computes_) {
    computing_.emplace();
  }
}

void PipelineThread::element_done() {
  computing_.reset();
  const int64_t now = now_nanoseconds();
  window_element_ns_ += now - element_start_ns_;
  if (now - window_start_ns_ < kWindowNanoseconds || window_element_ns_ == 0) return;
  const int64_t cpu_now = thread_cpu_nanoseconds();
  computes_ = static_cast<double>(cpu_now - window_start_cpu_ns_) >= kComputingShare * static_cast<double>(window_element_ns_);
  window_start_ns_ = now;
  window_start_cpu_ns_ = cpu_now;
  window_element_ns_ = 0;
}

}  // namespace kiln::data
