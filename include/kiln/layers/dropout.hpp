// kiln/layers/dropout.hpp — inverted dropout: in training, zero each input with probability
// `rate` and scale the survivors by 1 / (1 - rate); at inference, pass the input through untouched.
//
// The mask of element i at training step t is a hash of (seed, t, i) (see random.hpp), so it is the
// same whatever the thread count, and a seed reproduces a run bit for bit. In a distributed step, i
// counts from the step's whole batch, so each process draws its samples' masks as one would.
#pragma once

#include "kiln/layers/layer.hpp"

namespace kiln::layers {

class Dropout : public Layer {
 public:
  explicit Dropout(float rate);

  std::string type_name() const override { return "Dropout"; }
  Shape build(const Shape& input_shape) override { return input_shape; }
  void initialize(uint64_t seed) override { seed_ = seed; }
  std::map<std::string, uint64_t> random_state() const override { return {{"seed", seed_}, {"step", step_}}; }
  void set_random_state(const std::map<std::string, uint64_t>& state) override;
  void set_first_sample(int64_t first) override { first_sample_ = first; }

  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;

  float rate() const { return rate_; }

 private:
  float rate_;
  uint64_t seed_ = 0;
  uint64_t step_ = 0;         // training forwards so far: part of the mask's hash
  int64_t first_sample_ = 0;  // the batch's first sample in the step's whole batch
  bool last_was_training_ = false;
  Tensor scale_;              // per element: 0 (dropped) or 1 / (1 - rate) (kept)
  Tensor output_;
  Tensor input_gradient_;
};

}  // namespace kiln::layers
