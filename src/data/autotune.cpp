// The map-parallelism hill climber (the prefetch buffer rule is inline in the header).
#include "kiln/data/autotune.hpp"

#include "kiln/parallel.hpp"

#include <algorithm>

namespace kiln::data {

int64_t available_cores() { return kiln::available_cores(); }

ParallelismTuner::ParallelismTuner(int64_t initial, int64_t maximum, int64_t cores, std::function<int64_t()> process_cpu_ns)
    : parallelism_(std::clamp<int64_t>(initial, 1, std::max<int64_t>(1, maximum))),
      maximum_(std::max<int64_t>(1, maximum)),
      cores_(std::max<int64_t>(1, cores)),
      process_cpu_ns_(std::move(process_cpu_ns)) {}

bool ParallelismTuner::on_element_taken(int64_t now_ns, int64_t wait_ns) {
  if (window_start_ns_ < 0) {
    window_start_ns_ = now_ns;
    window_start_process_cpu_ns_ = process_cpu_ns_();
  }
  ++window_elements_;
  window_wait_ns_ += wait_ns;
  const int64_t elapsed_ns = now_ns - window_start_ns_;
  if (window_elements_ < kWindowElements || elapsed_ns < kWindowMinNanoseconds) return false;

  const double rate = static_cast<double>(window_elements_) / (static_cast<double>(elapsed_ns) * 1e-9);
  const double starved_share = static_cast<double>(window_wait_ns_) / static_cast<double>(elapsed_ns);
  const int64_t process_cpu_ns = process_cpu_ns_();
  const double idle_cores = static_cast<double>(cores_) - static_cast<double>(process_cpu_ns - window_start_process_cpu_ns_) /
                                                               static_cast<double>(elapsed_ns);
  window_start_ns_ = now_ns;
  window_start_process_cpu_ns_ = process_cpu_ns;
  window_elements_ = 0;
  window_wait_ns_ = 0;

  if (probing_) {  // judge the worker added one window ago
    probing_ = false;
    if (rate < rate_before_probe_ * kRequiredGain) {
      --parallelism_;
      windows_until_retry_ = kWindowsBeforeRetry;
      return true;
    }
    return false;
  }
  if (windows_until_retry_ > 0) {
    --windows_until_retry_;
    return false;
  }
  if (starved_share > kStarvedShare && parallelism_ < maximum_ && idle_cores >= kMinIdleCores) {
    rate_before_probe_ = rate;
    ++parallelism_;
    probing_ = true;
    return true;
  }
  return false;
}

}  // namespace kiln::data
