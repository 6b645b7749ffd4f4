// Adam and SGD: each one loop over the whole parameter arena.
#include "kiln/optimizers.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <cmath>

namespace kiln {

Optimizer::Optimizer(float learning_rate) : learning_rate_(learning_rate) {
  if (!(learning_rate > 0.0f)) throw ValueError("the learning rate must be positive, got " + std::to_string(learning_rate));
}

void Optimizer::resize_slots(std::vector<float>& slot, size_t size) {
  if (slot.size() != size) slot.assign(size, 0.0f);
}

namespace optimizers {

Adam::Adam(float learning_rate, float beta_1, float beta_2, float epsilon)
    : Optimizer(learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
  if (!(beta_1 >= 0.0f && beta_1 < 1.0f) || !(beta_2 >= 0.0f && beta_2 < 1.0f)) {
    throw ValueError("Adam's beta_1 and beta_2 must be in [0, 1)");
  }
}

void Adam::apply(std::span<float> values, std::span<const float> gradients) {
  resize_slots(first_moment_, values.size());
  resize_slots(second_moment_, values.size());
  ++iterations_;
  const double t = static_cast<double>(iterations_);
  const float step_size = static_cast<float>(learning_rate_ * std::sqrt(1.0 - std::pow(beta_2_, t)) /
                                             (1.0 - std::pow(beta_1_, t)));
  const int64_t n = static_cast<int64_t>(values.size());
  float* w = values.data();
  const float* g = gradients.data();
  float* m = first_moment_.data();
  float* v = second_moment_.data();
  const float beta_1 = beta_1_, beta_2 = beta_2_, epsilon = epsilon_;
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = beta_1 * m[i] + (1.0f - beta_1) * g[i];
    v[i] = beta_2 * v[i] + (1.0f - beta_2) * g[i] * g[i];
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) + epsilon);
  }
}

SGD::SGD(float learning_rate, float momentum, bool nesterov)
    : Optimizer(learning_rate), momentum_(momentum), nesterov_(nesterov) {
  if (!(momentum >= 0.0f && momentum <= 1.0f)) throw ValueError("SGD's momentum must be in [0, 1]");
}

void SGD::apply(std::span<float> values, std::span<const float> gradients) {
  ++iterations_;
  const int64_t n = static_cast<int64_t>(values.size());
  float* w = values.data();
  const float* g = gradients.data();
  const float lr = learning_rate_, momentum = momentum_;
  if (momentum == 0.0f) {
#pragma omp parallel for simd if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
    return;
  }
  resize_slots(velocity_, values.size());
  float* velocity = velocity_.data();
  const bool nesterov = nesterov_;
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    velocity[i] = momentum * velocity[i] - lr * g[i];
    w[i] += nesterov ? momentum * velocity[i] - lr * g[i] : velocity[i];
  }
}

}  // namespace optimizers
}  // namespace kiln
