// Pipeline statistics: snapshots and their table.
#include "kiln/data/stats.hpp"

#include <cstdio>

namespace kiln::data {

std::vector<StageReport> PipelineStats::report() const {
  std::lock_guard lock(mutex_);
  std::vector<StageReport> result;
  for (const Entry& entry : entries_) {
    if (entry.child) {
      for (StageReport& r : entry.child->report()) result.push_back(std::move(r));
      continue;
    }
    if (!entry.stage) continue;  // a child slot not filled yet
    const StageStatistics& stage = *entry.stage;
    StageReport r;
    r.name = stage.name;
    r.elements_produced = stage.elements_produced.load();
    r.busy_seconds = static_cast<double>(stage.busy_nanoseconds.load()) * 1e-9;
    r.consumer_wait_seconds = static_cast<double>(stage.consumer_wait_nanoseconds.load()) * 1e-9;
    r.buffer_capacity = stage.buffer_capacity.load();
    const int64_t samples = stage.occupancy_samples.load();
    r.mean_buffer_occupancy = samples ? static_cast<double>(stage.occupancy_sum.load()) / static_cast<double>(samples) : 0.0;
    r.parallelism = stage.parallelism.load();
    r.autotuned = stage.autotuned.load();
    result.push_back(r);
  }
  return result;
}

std::string format_report(const std::vector<StageReport>& report) {
  std::string text = "stage          elements    busy s    wait s   buffer  occupancy  threads\n";
  char line[160];
  for (const StageReport& r : report) {
    std::snprintf(line, sizeof line, "%-12s %10lld %9.3f %9.3f %8lld %10.2f %8lld\n", r.name.c_str(),
                  static_cast<long long>(r.elements_produced), r.busy_seconds, r.consumer_wait_seconds,
                  static_cast<long long>(r.buffer_capacity), r.mean_buffer_occupancy,
                  static_cast<long long>(r.parallelism));
    text += line;
  }
  return text;
}

}  // namespace kiln::data
