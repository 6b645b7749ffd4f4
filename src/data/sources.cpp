// The range() source.
#include "kiln/data/sources.hpp"

namespace kiln::data {
namespace {

class RangeIterator : public Iterator<int64_t> {
 public:
  RangeIterator(int64_t start, int64_t stop, int64_t step, std::shared_ptr<StageStatistics> stats)
      : next_(start), stop_(stop), step_(step), stats_(std::move(stats)) {}
  std::optional<int64_t> next() override {
    if (step_ > 0 ? next_ >= stop_ : next_ <= stop_) return std::nullopt;
    stats_->elements_produced++;
    const int64_t value = next_;
    next_ += step_;
    return value;
  }

 private:
  int64_t next_, stop_, step_;
  std::shared_ptr<StageStatistics> stats_;
};

}  // namespace

RangeNode::RangeNode(int64_t start, int64_t stop, int64_t step) : start_(start), stop_(stop), step_(step) {
  if (step == 0) throw ValueError("range: step must not be 0");
}

std::unique_ptr<Iterator<int64_t>> RangeNode::make_iterator(IterationContext& context) const {
  return std::make_unique<RangeIterator>(start_, stop_, step_, context.stats->add_stage("range"));
}

int64_t RangeNode::cardinality() const {
  const int64_t span = step_ > 0 ? stop_ - start_ : start_ - stop_;
  const int64_t magnitude = step_ > 0 ? step_ : -step_;
  return span <= 0 ? 0 : (span + magnitude - 1) / magnitude;
}

}  // namespace kiln::data
