// kiln/optimizers.hpp — optimizers: one update over the model's whole parameter arena.
//
// The model keeps every parameter and gradient in two contiguous arrays, so an optimizer step is
// one vectorised loop over all of them, shared out to the team, with its slot variables (Adam's moments,
// SGD's velocity) in arrays of the same length. The learning rate is a number or a schedule
// (schedules.hpp). Runs on the training thread. Large slots are
// written past the caches (see optimizers.cpp for why).
#pragma once

#include "kiln/schedules.hpp"
#include "kiln/tensor.hpp"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace kiln {

// Slots this large or larger (all of an optimizer's, in bytes) are written with streaming stores,
// which bypass the caches: see optimizers.cpp.
inline constexpr int64_t kStreamSlotsFromBytes = int64_t{12} << 20;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;

  // One step: values -= update(gradients). Slots are created on the first call.
  virtual void apply(std::span<float> values, std::span<const float> gradients) = 0;

  // The rate the next update will use (a schedule's value at iterations()).
  float learning_rate() const { return learning_rate_.at(iterations_); }
  // For callbacks such as ReduceLROnPlateau; a ValueError when a schedule sets the rate, as in Keras.
  void set_learning_rate(float learning_rate);
  bool has_schedule() const { return learning_rate_.is_schedule(); }
  const LearningRate& learning_rate_setting() const { return learning_rate_; }
  int64_t iterations() const { return iterations_; }

  // The optimizer's variables besides the weights, for whole-model files and resumed training:
  // each slot under Keras's name ("momentum", "velocity"), one float per parameter of the arena,
  // empty before the first step.
  struct SlotValues {
    std::string name;
    std::span<const float> values;
  };
  std::vector<SlotValues> slots();
  // Puts back a saved state: the step counter and each slot by name (a slot not given, or given
  // empty, starts again at zero). The caller has checked each slot's length against the arena.
  void restore(int64_t iterations, const std::map<std::string, std::vector<float>>& slots);

 protected:
  // One float per parameter, starting on a cache line (the streaming stores need whole lines).
  using Slot = std::vector<float, CacheLineAllocator<float>>;

  explicit Optimizer(LearningRate learning_rate);
  void resize_slots(Slot& slot, size_t size);  // zero-filled on first use

  // This optimizer's slots by name; computed on each call, so a moved optimizer stays valid.
  virtual std::vector<std::pair<std::string, Slot*>> named_slots() = 0;

  LearningRate learning_rate_;
  int64_t iterations_ = 0;
};

namespace optimizers {

// Adam as Keras computes it (epsilon is the paper's "epsilon hat"):
//   m = beta_1 m + (1 - beta_1) g          first moment
//   v = beta_2 v + (1 - beta_2) g^2        second moment
//   lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)   bias correction folded into the step size
//   w -= lr_t m / (sqrt(v) + epsilon)
class Adam : public Optimizer {
 public:
  explicit Adam(LearningRate learning_rate = 1e-3f, float beta_1 = 0.9f, float beta_2 = 0.999f, float epsilon = 1e-7f);
  std::string name() const override { return "adam"; }
  void apply(std::span<float> values, std::span<const float> gradients) override;
  float beta_1() const { return beta_1_; }
  float beta_2() const { return beta_2_; }
  float epsilon() const { return epsilon_; }

 private:
  std::vector<std::pair<std::string, Slot*>> named_slots() override {
    return {{"momentum", &first_moment_}, {"velocity", &second_moment_}};
  }

  float beta_1_, beta_2_, epsilon_;
  Slot first_moment_, second_moment_;
};

// SGD with optional momentum, as Keras computes it:
//   no momentum:  w -= lr g
//   momentum:     v = momentum v - lr g;  w += v            (nesterov: w += momentum v - lr g)
class SGD : public Optimizer {
 public:
  explicit SGD(LearningRate learning_rate = 0.01f, float momentum = 0.0f, bool nesterov = false);
  std::string name() const override { return "sgd"; }
  void apply(std::span<float> values, std::span<const float> gradients) override;
  float momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

 private:
  std::vector<std::pair<std::string, Slot*>> named_slots() override {
    if (momentum_ == 0.0f) return {};  // plain SGD keeps no slot, as in Keras
    return {{"momentum", &velocity_}};
  }

  float momentum_;
  bool nesterov_;
  Slot velocity_;
};

}  // namespace optimizers
}  // namespace kiln
