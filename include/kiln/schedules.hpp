// kiln/schedules.hpp — learning-rate schedules: the rate as a function of the optimizer's step,
// Keras's keras.optimizers.schedules, accepted wherever a learning rate is:
//   optimizers::Adam(optimizers::schedules::CosineDecay({.initial_learning_rate = 0, .decay_steps = 1000,
//                                                        .warmup_target = 1e-3, .warmup_steps = 100}))
// `step` counts the optimizer's updates before the one being made: the first update uses step 0,
// as Keras's optimizer.iterations does.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double at(int64_t step) const = 0;
  virtual std::string name() const = 0;
};

// A fixed learning rate or a schedule: what every optimizer's learning_rate argument takes.
class LearningRate {
 public:
  LearningRate(float value);  // NOLINT: implicit, so Adam(1e-3f) reads as in Keras
  LearningRate(double value) : LearningRate(static_cast<float>(value)) {}  // NOLINT: Adam(1e-3)
  template <std::derived_from<LearningRateSchedule> Schedule>
  LearningRate(Schedule schedule) : schedule_(std::make_shared<Schedule>(std::move(schedule))) {}  // NOLINT
  template <std::derived_from<LearningRateSchedule> Schedule>
  LearningRate(std::shared_ptr<Schedule> schedule) : schedule_(std::move(schedule)) {}  // NOLINT

  // The rate for the update made after `step` earlier ones.
  float at(int64_t step) const { return schedule_ ? static_cast<float>(schedule_->at(step)) : value_; }
  bool is_schedule() const { return schedule_ != nullptr; }
  const LearningRateSchedule* schedule() const { return schedule_.get(); }

 private:
  float value_ = 0.0f;
  std::shared_ptr<const LearningRateSchedule> schedule_;
};

namespace optimizers::schedules {

// initial_learning_rate * decay_rate ^ (step / decay_steps); with staircase the exponent is
// rounded down, so the rate drops every decay_steps steps.
struct ExponentialDecayOptions {
  double initial_learning_rate = 0.0;
  int64_t decay_steps = 0;
  double decay_rate = 0.0;
  bool staircase = false;
};
class ExponentialDecay : public LearningRateSchedule {
 public:
  explicit ExponentialDecay(ExponentialDecayOptions options);
  double at(int64_t step) const override;
  std::string name() const override { return "ExponentialDecay"; }
  const ExponentialDecayOptions& options() const { return options_; }

 private:
  ExponentialDecayOptions options_;
};

// values[0] up to and including step boundaries[0], values[1] after it up to boundaries[1], ...,
// values.back() after the last boundary. values has one more entry than boundaries.
class PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values);
  double at(int64_t step) const override;
  std::string name() const override { return "PiecewiseConstantDecay"; }
  const std::vector<int64_t>& boundaries() const { return boundaries_; }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};

// Cosine decay (Loshchilov & Hutter), after an optional linear warm-up:
//   warm-up (with a warmup_target, for step < warmup_steps):
//     initial + (warmup_target - initial) * step / warmup_steps
//   then, with s = min(step - warmup_steps, decay_steps) and peak = warmup_target or initial:
//     peak * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)
struct CosineDecayOptions {
  double initial_learning_rate = 0.0;
  int64_t decay_steps = 0;
  double alpha = 0.0;
  std::optional<double> warmup_target;
  int64_t warmup_steps = 0;
};
class CosineDecay : public LearningRateSchedule {
 public:
  explicit CosineDecay(CosineDecayOptions options);
  double at(int64_t step) const override;
  std::string name() const override { return "CosineDecay"; }
  const CosineDecayOptions& options() const { return options_; }

 private:
  CosineDecayOptions options_;
};

}  // namespace optimizers::schedules
}  // namespace kiln
