// Pipeline threads: one OpenMP thread each, and a lower priority once they prove CPU-heavy.
#include "kiln/data/pipeline_thread.hpp"

#include "kiln/data/stats.hpp"

#include <omp.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

namespace kiln::data {
namespace {

int64_t cpu_clock_nanoseconds(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

int64_t thread_cpu_nanoseconds() { return cpu_clock_nanoseconds(CLOCK_THREAD_CPUTIME_ID); }
int64_t process_cpu_nanoseconds() { return cpu_clock_nanoseconds(CLOCK_PROCESS_CPUTIME_ID); }

PipelineThread::PipelineThread() : window_start_ns_(now_nanoseconds()), window_start_cpu_ns_(thread_cpu_nanoseconds()) {
  omp_set_num_threads(1);
}

void PipelineThread::element_done() {
  if (lowered_) return;
  const int64_t now = now_nanoseconds();
  const int64_t elapsed = now - window_start_ns_;
  if (elapsed < kWindowNanoseconds) return;
  const int64_t cpu_now = thread_cpu_nanoseconds();
  const double busy_share = static_cast<double>(cpu_now - window_start_cpu_ns_) / static_cast<double>(elapsed);
  window_start_ns_ = now;
  window_start_cpu_ns_ = cpu_now;
  if (busy_share > kBusyShare) {
    // Per thread on Linux: PRIO_PROCESS with a thread id sets that thread's nice value alone.
    setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    lowered_ = true;
  }
}

}  // namespace kiln::data
