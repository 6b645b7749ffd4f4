// The range() and random() sources.
#include "kiln/data/sources.hpp"

#include "kiln/random.hpp"

#include <limits>

namespace kiln::data {
namespace {

// Counts down the elements rather than comparing against stop: start + k * step stays inside
// [start, stop) for every element, where one step past the last could overflow int64.
class RangeIterator : public Iterator<int64_t> {
 public:
  RangeIterator(int64_t start, int64_t step, int64_t count, std::shared_ptr<StageStatistics> stats)
      : next_(start), step_(step), remaining_(count), stats_(std::move(stats)) {}
  std::optional<int64_t> next() override {
    if (remaining_ == 0) return std::nullopt;
    stats_->elements_produced++;
    const int64_t value = next_;
    if (--remaining_ > 0) next_ += step_;
    return value;
  }

 private:
  int64_t next_, step_, remaining_;
  std::shared_ptr<StageStatistics> stats_;
};

// How many of start, start + step, ... lie before stop, in unsigned arithmetic: stop - start
// overflows int64 for range(INT64_MIN, INT64_MAX).
uint64_t range_count(int64_t start, int64_t stop, int64_t step) {
  if (step > 0 ? stop <= start : stop >= start) return 0;
  const uint64_t span = step > 0 ? static_cast<uint64_t>(stop) - static_cast<uint64_t>(start)
                                 : static_cast<uint64_t>(start) - static_cast<uint64_t>(stop);
  const uint64_t magnitude = step > 0 ? static_cast<uint64_t>(step) : 0 - static_cast<uint64_t>(step);
  return span / magnitude + (span % magnitude != 0 ? 1 : 0);
}

}  // namespace

RangeNode::RangeNode(int64_t start, int64_t stop, int64_t step) : start_(start), stop_(stop), step_(step) {
  if (step == 0) throw ValueError("range: step must not be 0");
  if (range_count(start, stop, step) > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw ValueError("range(" + std::to_string(start) + ", " + std::to_string(stop) + ", " + std::to_string(step) +
                     ") has more than 2^63 - 1 elements, more than a dataset can count");
  }
}

std::unique_ptr<Iterator<int64_t>> RangeNode::make_iterator(IterationContext& context) const {
  return std::make_unique<RangeIterator>(start_, step_, cardinality(), context.stats->add_stage("range"));
}

int64_t RangeNode::cardinality() const { return static_cast<int64_t>(range_count(start_, stop_, step_)); }

namespace {

class RandomIterator : public Iterator<uint64_t> {
 public:
  RandomIterator(uint64_t seed, std::shared_ptr<StageStatistics> stats) : rng_(seed), stats_(std::move(stats)) {}
  std::optional<uint64_t> next() override {
    stats_->elements_produced++;
    return rng_.next();
  }

 private:
  Rng rng_;
  std::shared_ptr<StageStatistics> stats_;
};

}  // namespace

std::unique_ptr<Iterator<uint64_t>> RandomNode::make_iterator(IterationContext& context) const {
  return std::make_unique<RandomIterator>(mix64(seed_ + start_epoch(epochs_started_, context)), context.stats->add_stage("random"));
}

}  // namespace kiln::data
