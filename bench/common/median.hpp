// bench/common/median.hpp — the statistic every benchmark reports: timings on a shared machine
// have outliers in one direction (a run slowed by other work), so the middle value, not the mean.
#pragma once

#include <algorithm>
#include <vector>

namespace kiln::bench {

// The middle of `values` (the upper middle of an even count); 0 for none.
inline double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace kiln::bench
