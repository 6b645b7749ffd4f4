// Dropout: forward and backward side by side.
#include "kiln/layers/dropout.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"
#include "kiln/random.hpp"

namespace kiln::layers {

Dropout::Dropout(float rate) : rate_(rate) {
  if (!(rate >= 0.0f && rate < 1.0f)) {
    throw ValueError("Dropout's rate must be in [0, 1), got " + std::to_string(rate));
  }
}

void Dropout::set_random_state(const std::map<std::string, uint64_t>& state) {
  if (!state.contains("seed") || !state.contains("step")) {
    throw ValueError(describe() + ": a saved random state needs both 'seed' and 'step'");
  }
  seed_ = state.at("seed");
  step_ = state.at("step");
}

// Training: y = x * scale, scale = 0 with probability rate, else 1 / (1 - rate).
// Inference: y = x (the input itself is returned; nothing is copied).
const Tensor& Dropout::forward(const Tensor& x, bool training) {
  last_was_training_ = training && rate_ > 0.0f;
  if (!last_was_training_) return x;
  const uint64_t step_seed = mix64(seed_ + step_++);
  const float keep_scale = 1.0f / (1.0f - rate_);
  scale_.resize(x.shape());
  output_.resize(x.shape());
  const int64_t n = x.size();
  const float* in = x.data();
  float* scale = scale_.data();
  float* out = output_.data();
  const float rate = rate_;
  const auto first_element = static_cast<uint64_t>(first_sample_ * x.row_size());
  for_each_share(n, n >= kParallelMinElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scale[i] = uniform_from_counter(step_seed, first_element + static_cast<uint64_t>(i)) < rate ? 0.0f : keep_scale;
      out[i] = in[i] * scale[i];
    }
  });
  return output_;
}

// dx = dy * scale (the same mask as forward); identity after an inference forward.
const Tensor& Dropout::backward(const Tensor& dy) {
  if (!last_was_training_) return dy;
  input_gradient_.resize(dy.shape());
  input_gradient_.matrix() = dy.matrix().cwiseProduct(scale_.matrix());
  return input_gradient_;
}

}  // namespace kiln::layers
