// Adam and SGD: each one loop over the whole parameter arena.
#include "kiln/optimizers.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#if defined(__SSE__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>

namespace kiln {
namespace {

// ---- slots written past the caches ---------------------------------------------------------------
// A slot (Adam's moments, SGD's velocity) is read and rewritten once per step and then left alone
// until the next step, by when the forward and backward passes have been through every weight,
// gradient and activation. Written through the caches, a large slot pushes that data out (a
// 784-1024-1024-10 model's moments are 15 MB, beside a 32 MB L3), and the next step fetches it again from memory. Written
// with streaming stores, the slot goes straight to memory and the caches keep the data that is
// used again soon. But slots the cache can hold beside everything else are better kept there, or
// each step reads them back from memory. Where the two cross depends on the L3; measured with
// Adam here (32 MB L3, 2 threads, epoch times streamed against cached):
//   784-1024-10, batch 64 (moments 6.5 MB)          9% slower
//   784-2048-10, batch 64 (13 MB)                   the same
//   784-1024-1024-10, batch 256 (15 MB)             2% to 5% faster (over several runs)
//   784-4096-10, batch 64 (26 MB)                   2% faster
// hence kStreamSlotsFromBytes, 12 MB (a machine with a larger L3 would want more).
constexpr int64_t kLineFloats = 16;  // one 64-byte cache line

// Copies one line of new slot values (in a buffer the compiler keeps in registers) to `slot`,
// which starts on a cache line, bypassing the caches where the CPU allows it.
void stream_line(float* slot, const float* line) {
#if defined(__AVX512F__)
  _mm512_stream_ps(slot, _mm512_load_ps(line));
#elif defined(__AVX__)
  _mm256_stream_ps(slot, _mm256_load_ps(line));
  _mm256_stream_ps(slot + 8, _mm256_load_ps(line + 8));
#elif defined(__SSE__)
  for (int64_t j = 0; j < kLineFloats; j += 4) _mm_stream_ps(slot + j, _mm_load_ps(line + j));
#else
  std::copy_n(line, kLineFloats, slot);
#endif
}

// Streaming stores are weakly ordered: each thread fences its own before the team's barrier, so
// that the next step, on whichever thread, reads the new values.
void fence_streamed_lines() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}

// Runs update(first, count, stream) over [0, n): whole lines of kLineFloats, split across the
// team when n is large enough, then the last n % kLineFloats elements. `stream` says whether the
// update may write its slots with stream_line (whole lines of large slots only). The updates
// vectorise with `omp simd` inside; `omp parallel for simd` would not do here: when its `if` is
// false GCC 12 runs a scalar loop, so a slot just under the threshold took longer than one over it.
template <class LineUpdate>
void update_by_lines(int64_t n, int64_t slot_bytes, const LineUpdate& update) {
  const bool stream = slot_bytes >= kStreamSlotsFromBytes;
  const int64_t whole_lines = n / kLineFloats;
  for_each_share(whole_lines, n >= kParallelMinElements, [&](int64_t first_line, int64_t end_line) {
    // A copy of its own lets each thread keep the update's constants in registers: stores into
    // the arena could otherwise overwrite the shared copy's floats, as far as the compiler knows.
    const LineUpdate thread_update = update;
    for (int64_t line = first_line; line < end_line; ++line) thread_update(line * kLineFloats, kLineFloats, stream);
    if (stream) fence_streamed_lines();
  });
  const int64_t tail = whole_lines * kLineFloats;
  if (tail < n) update(tail, n - tail, false);
}

}  // namespace

Optimizer::Optimizer(LearningRate learning_rate) : learning_rate_(std::move(learning_rate)) {}

void Optimizer::set_learning_rate(float learning_rate) {
  if (learning_rate_.is_schedule()) {
    throw ValueError(name() + ": its learning rate comes from a schedule, so it cannot be set; change the schedule instead");
  }
  learning_rate_ = LearningRate(learning_rate);
}

std::vector<Optimizer::SlotValues> Optimizer::slots() {
  std::vector<SlotValues> result;
  for (auto& [name, slot] : named_slots()) result.push_back({name, *slot});
  return result;
}

void Optimizer::restore(int64_t iterations, const std::map<std::string, std::vector<float>>& slots) {
  iterations_ = iterations;
  for (auto& [name, slot] : named_slots()) {
    auto found = slots.find(name);
    if (found == slots.end()) {
      slot->clear();
    } else {
      slot->assign(found->second.begin(), found->second.end());
    }
  }
}

void Optimizer::resize_slots(Slot& slot, size_t size) {
  if (slot.size() != size) slot.assign(size, 0.0f);
}

namespace optimizers {

Adam::Adam(LearningRate learning_rate, float beta_1, float beta_2, float epsilon)
    : Optimizer(std::move(learning_rate)), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
  if (!(beta_1 >= 0.0f && beta_1 < 1.0f) || !(beta_2 >= 0.0f && beta_2 < 1.0f)) {
    throw ValueError("Adam's beta_1 and beta_2 must be in [0, 1)");
  }
}

void Adam::apply(std::span<float> values, std::span<const float> gradients) {
  resize_slots(first_moment_, values.size());
  resize_slots(second_moment_, values.size());
  const float learning_rate = learning_rate_.at(iterations_);
  ++iterations_;
  const double t = static_cast<double>(iterations_);
  const float step_size = static_cast<float>(learning_rate * std::sqrt(1.0 - std::pow(beta_2_, t)) /
                                             (1.0 - std::pow(beta_1_, t)));
  const int64_t n = static_cast<int64_t>(values.size());
  float* w = values.data();
  const float* g = gradients.data();
  float* m = first_moment_.data();
  float* v = second_moment_.data();
  const float beta_1 = beta_1_, beta_2 = beta_2_, epsilon = epsilon_;
  update_by_lines(n, 2 * n * static_cast<int64_t>(sizeof(float)), [=](int64_t first, int64_t count, bool stream) {
    alignas(64) float new_m[kLineFloats], new_v[kLineFloats];
#pragma omp simd
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = first + j;
      new_m[j] = beta_1 * m[i] + (1.0f - beta_1) * g[i];
      new_v[j] = beta_2 * v[i] + (1.0f - beta_2) * g[i] * g[i];
      w[i] -= step_size * new_m[j] / (std::sqrt(new_v[j]) + epsilon);
    }
    if (stream) {
      stream_line(m + first, new_m);
      stream_line(v + first, new_v);
    } else {
      std::copy_n(new_m, count, m + first);
      std::copy_n(new_v, count, v + first);
    }
  });
}

SGD::SGD(LearningRate learning_rate, float momentum, bool nesterov)
    : Optimizer(std::move(learning_rate)), momentum_(momentum), nesterov_(nesterov) {
  if (!(momentum >= 0.0f && momentum <= 1.0f)) throw ValueError("SGD's momentum must be in [0, 1]");
}

void SGD::apply(std::span<float> values, std::span<const float> gradients) {
  const float lr = learning_rate_.at(iterations_), momentum = momentum_;
  ++iterations_;
  const int64_t n = static_cast<int64_t>(values.size());
  float* w = values.data();
  const float* g = gradients.data();
  if (momentum == 0.0f) {
    for_each_share(n, n >= kParallelMinElements, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) w[i] -= lr * g[i];
    });
    return;
  }
  resize_slots(velocity_, values.size());
  float* velocity = velocity_.data();
  const bool nesterov = nesterov_;
  update_by_lines(n, n * static_cast<int64_t>(sizeof(float)), [=](int64_t first, int64_t count, bool stream) {
    alignas(64) float new_velocity[kLineFloats];
#pragma omp simd
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = first + j;
      new_velocity[j] = momentum * velocity[i] - lr * g[i];
      w[i] += nesterov ? momentum * new_velocity[j] - lr * g[i] : new_velocity[j];
    }
    if (stream) {
      stream_line(velocity + first, new_velocity);
    } else {
      std::copy_n(new_velocity, count, velocity + first);
    }
  });
}

}  // namespace optimizers
}  // namespace kiln
