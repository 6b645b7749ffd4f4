// The global seed generator behind set_random_seed / next_seed.
#include "kiln/random.hpp"

#include <mutex>
#include <optional>
#include <random>

namespace kiln {
namespace {

std::mutex seed_mutex;
std::optional<Rng> seed_generator;  // created on first use when no seed was set

}  // namespace

void set_random_seed(uint64_t seed) {
  std::lock_guard lock(seed_mutex);
  seed_generator.emplace(seed);
}

namespace {
Rng& seed_generator_locked() {
  if (!seed_generator) {
    std::random_device device;
    seed_generator.emplace((static_cast<uint64_t>(device()) << 32) | device());
  }
  return *seed_generator;
}
}  // namespace

uint64_t next_seed() {
  std::lock_guard lock(seed_mutex);
  return seed_generator_locked().next();
}

uint64_t random_state() {
  std::lock_guard lock(seed_mutex);
  return seed_generator_locked().state();
}

}  // namespace kiln
