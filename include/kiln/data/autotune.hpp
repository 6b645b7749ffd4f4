// kiln/data/autotune.hpp — the controllers behind AUTOTUNE: they watch a running stage and set its
// buffer size or its number of worker threads.
//
// PrefetchTuner (buffer size): starts at one element and doubles the buffer each time the consumer
// finds it empty, up to a ceiling: tf.data's rule, grow only while growing removes waits. It also
// doubles while the consumer takes elements so fast that the producer would be woken more than
// once a millisecond: a full queue wakes its producer each time half of it has been taken, and
// each wake-up costs the model's team a core for a while (tens of microseconds on a virtual
// machine), which a deeper buffer spreads over more elements.
//
// ParallelismTuner (map workers): hill climbing on measured throughput. Every window of taken
// elements it looks at the share of time the consumer spent waiting. If the consumer starved and
// the process left at least half a core idle, it adds a worker and measures again: if output did
// not rise by 5%, the worker is taken back and no new one is tried for a while. The idle core is
// asked for because trying costs: when the model's team already keeps every core busy, a
// worker that computes can only preempt the team, whose threads then wait for each other at every
// barrier, and the window spent measuring it runs several times slower.
// Each is used by one thread only: the consumer of its stage.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace kiln::data {

// The cores this process may run on: the most workers a parallel map starts.
int64_t available_cores();

class PrefetchTuner {
 public:
  static constexpr int64_t kMaxBufferSize = 16;

  static constexpr int64_t kWindowElements = 16;
  static constexpr int64_t kMinWakeIntervalNanoseconds = 1'000'000;

  int64_t buffer_size() const { return buffer_size_; }
  // The consumer found the buffer empty while the producer was still running.
  void on_consumer_starved() { buffer_size_ = std::min(kMaxBufferSize, 2 * buffer_size_); }
  // The consumer took an element at now_ns. Returns true when the buffer grew.
  bool on_element_taken(int64_t now_ns) {
    if (window_start_ns_ < 0) window_start_ns_ = now_ns;
    if (++window_elements_ < kWindowElements) return false;
    const int64_t interval_ns = (now_ns - window_start_ns_) / window_elements_;
    window_start_ns_ = now_ns;
    window_elements_ = 0;
    const int64_t taken_per_wake = buffer_size_ - buffer_size_ / 2;  // the queue refills from half full
    if (buffer_size_ >= kMaxBufferSize || taken_per_wake * interval_ns >= kMinWakeIntervalNanoseconds) return false;
    buffer_size_ = std::min(kMaxBufferSize, 2 * buffer_size_);
    return true;
  }

 private:
  int64_t buffer_size_ = 1;
  int64_t window_start_ns_ = -1;
  int64_t window_elements_ = 0;
};

class ParallelismTuner {
 public:
  // cores: how many the process may run on. process_cpu_ns: the CPU time the whole process has
  // used so far (the model's threads included), read once per window.
  ParallelismTuner(int64_t initial, int64_t maximum, int64_t cores, std::function<int64_t()> process_cpu_ns);

  int64_t parallelism() const { return parallelism_; }

  // One element was taken at time now_ns, after the consumer waited wait_ns for it.
  // Returns true when the parallelism changed.
  bool on_element_taken(int64_t now_ns, int64_t wait_ns);

 private:
  static constexpr int64_t kWindowElements = 32;
  static constexpr int64_t kWindowMinNanoseconds = 20'000'000;  // 20 ms: enough to average noise
  static constexpr double kStarvedShare = 0.10;                 // waiting >10% of the time: too slow
  static constexpr double kRequiredGain = 1.05;                 // a new worker must add 5% throughput
  static constexpr double kMinIdleCores = 0.5;                  // room a new worker needs to run in
  static constexpr int kWindowsBeforeRetry = 25;

  int64_t parallelism_;
  int64_t maximum_;
  int64_t cores_;
  std::function<int64_t()> process_cpu_ns_;
  int64_t window_start_process_cpu_ns_ = 0;
  int64_t window_start_ns_ = -1;
  int64_t window_elements_ = 0;
  int64_t window_wait_ns_ = 0;
  bool probing_ = false;             // measuring the effect of the last added worker
  double rate_before_probe_ = 0.0;   // elements per second with one worker fewer
  int windows_until_retry_ = 0;
};

}  // namespace kiln::data
