// Learning-rate schedules: Keras's formulas, in double precision, rounded to float only when an
// optimizer uses the rate.
#include "kiln/schedules.hpp"

#include "kiln/error.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kiln {

LearningRate::LearningRate(float value) : value_(value) {
  if (!(value > 0.0f) || !std::isfinite(value)) {
    throw ValueError("the learning rate must be a positive number, got " + std::to_string(value));
  }
}

namespace optimizers::schedules {

ExponentialDecay::ExponentialDecay(ExponentialDecayOptions options) : options_(options) {
  if (options.decay_steps < 1) throw ValueError("ExponentialDecay: decay_steps must be at least 1, got " + std::to_string(options.decay_steps));
  if (!(options.initial_learning_rate > 0.0) || !(options.decay_rate > 0.0)) {
    throw ValueError("ExponentialDecay: initial_learning_rate and decay_rate must be positive");
  }
}

double ExponentialDecay::at(int64_t step) const {
  double exponent = static_cast<double>(step) / static_cast<double>(options_.decay_steps);
  if (options_.staircase) exponent = std::floor(exponent);
  return options_.initial_learning_rate * std::pow(options_.decay_rate, exponent);
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  if (values_.size() != boundaries_.size() + 1) {
    throw ValueError("PiecewiseConstantDecay: values needs one more entry than boundaries, got " +
                     std::to_string(values_.size()) + " values for " + std::to_string(boundaries_.size()) + " boundaries");
  }
  if (!std::is_sorted(boundaries_.begin(), boundaries_.end())) throw ValueError("PiecewiseConstantDecay: boundaries must increase");
  for (double value : values_) {
    if (!(value > 0.0)) throw ValueError("PiecewiseConstantDecay: every value must be positive");
  }
}

double PiecewiseConstantDecay::at(int64_t step) const {
  // The first boundary at or after the step: values before it apply up to and including it.
  const auto boundary = std::lower_bound(boundaries_.begin(), boundaries_.end(), step);
  return values_[static_cast<size_t>(boundary - boundaries_.begin())];
}

CosineDecay::CosineDecay(CosineDecayOptions options) : options_(options) {
  if (options.decay_steps < 1) throw ValueError("CosineDecay: decay_steps must be at least 1, got " + std::to_string(options.decay_steps));
  if (options.warmup_steps < 0) throw ValueError("CosineDecay: warmup_steps must be at least 0");
  if (options.initial_learning_rate < 0.0 || (options.warmup_target && !(*options.warmup_target > 0.0)) ||
      (!options.warmup_target && !(options.initial_learning_rate > 0.0))) {
    throw ValueError("CosineDecay: the learning rate it decays from (warmup_target, or initial_learning_rate) must be positive");
  }
}

double CosineDecay::at(int64_t step) const {
  const double initial = options_.initial_learning_rate;
  if (options_.warmup_target && step < options_.warmup_steps) {
    return initial + (*options_.warmup_target - initial) * static_cast<double>(step) / static_cast<double>(options_.warmup_steps);
  }
  const double peak = options_.warmup_target.value_or(initial);
  const int64_t decay_step = std::min(step - (options_.warmup_target ? options_.warmup_steps : 0), options_.decay_steps);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(decay_step) /
                                               static_cast<double>(options_.decay_steps)));
  return peak * ((1.0 - options_.alpha) * cosine + options_.alpha);
}

}  // namespace optimizers::schedules
}  // namespace kiln
