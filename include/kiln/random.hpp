// kiln/random.hpp — where kiln's randomness comes from, and how a seed makes it repeatable.
//
// One global seed generator (like keras.utils.set_random_seed) hands out a seed to each consumer
// in a fixed order: weight initialisers when a model is built, Dropout layers, fit's shuffling.
// Element-wise randomness (dropout masks) is counter-based: the value for element i of step t is a
// hash of (seed, t, i), so the result does not depend on how the team splits the loop.
// next_seed() is safe to call from any thread.
#pragma once

#include <cstdint>

namespace kiln {

// Seed the global generator. Without a call, seeds come from std::random_device, as Keras's do.
void set_random_seed(uint64_t seed);

// The next seed from the global generator.
uint64_t next_seed();

// The global generator's state: set_random_seed(random_state()) elsewhere continues the same
// sequence (distributed.hpp gives every rank rank 0's).
uint64_t random_state();

// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A uniform float in [0, 1) determined by (seed, counter) alone: the (counter + 1)th output of
// SplitMix64 started at seed, whose state only ever adds the same constant, so any output can be
// computed directly. One multiply-xorshift chain per value (a Dropout mask is one per element).
inline float uniform_from_counter(uint64_t seed, uint64_t counter) {
  return static_cast<float>(mix64(seed + counter * 0x9E3779B97F4A7C15ull) >> 40) * 0x1.0p-24f;
}

// A small sequential generator for serial work (initialisers, shuffles): SplitMix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix64(state_);
  }
  float uniform(float low, float high) { return low + (high - low) * (static_cast<float>(next() >> 40) * 0x1.0p-24f); }
  // Uniform integer in [0, bound), bound > 0; the tiny modulo bias is irrelevant at our sizes.
  uint64_t below(uint64_t bound) { return next() % bound; }
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

}  // namespace kiln
