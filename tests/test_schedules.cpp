// Tests of kiln/schedules.hpp: each schedule against Keras's formula at chosen steps, and
// optimizers driven by a schedule step by step.
#include "kiln/schedules.hpp"

#include "kiln/error.hpp"
#include "kiln/optimizers.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

using namespace kiln;
using optimizers::schedules::CosineDecay;
using optimizers::schedules::ExponentialDecay;
using optimizers::schedules::PiecewiseConstantDecay;

TEST_CASE("ExponentialDecay is initial * rate^(step / decay_steps), rounded down with staircase") {
  const ExponentialDecay smooth({.initial_learning_rate = 0.1, .decay_steps = 10, .decay_rate = 0.5});
  CHECK(smooth.at(0) == doctest::Approx(0.1).epsilon(1e-12));
  CHECK(smooth.at(5) == doctest::Approx(0.1 * std::sqrt(0.5)).epsilon(1e-12));
  CHECK(smooth.at(10) == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(smooth.at(25) == doctest::Approx(0.1 * std::pow(0.5, 2.5)).epsilon(1e-12));
  const ExponentialDecay stairs({.initial_learning_rate = 0.1, .decay_steps = 10, .decay_rate = 0.5, .staircase = true});
  CHECK(stairs.at(9) == doctest::Approx(0.1).epsilon(1e-12));
  CHECK(stairs.at(15) == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(stairs.at(20) == doctest::Approx(0.025).epsilon(1e-12));
  CHECK_THROWS_AS(ExponentialDecay({.initial_learning_rate = 0.1, .decay_steps = 0, .decay_rate = 0.5}), ValueError);
}

TEST_CASE("PiecewiseConstantDecay holds each value up to and including its boundary") {
  const PiecewiseConstantDecay pieces({10, 20}, {1.0, 0.5, 0.1});
  CHECK(pieces.at(0) == 1.0);
  CHECK(pieces.at(10) == 1.0);
  CHECK(pieces.at(11) == 0.5);
  CHECK(pieces.at(20) == 0.5);
  CHECK(pieces.at(21) == 0.1);
  CHECK(pieces.at(1'000'000) == 0.1);
  CHECK_THROWS_AS(PiecewiseConstantDecay({10, 20}, {1.0, 0.5}), ValueError);
  CHECK_THROWS_AS(PiecewiseConstantDecay({20, 10}, {1.0, 0.5, 0.1}), ValueError);
}

TEST_CASE("CosineDecay follows the half cosine down to alpha, after an optional linear warm-up") {
  const CosineDecay plain({.initial_learning_rate = 1.0, .decay_steps = 100, .alpha = 0.1});
  CHECK(plain.at(0) == doctest::Approx(1.0));
  CHECK(plain.at(50) == doctest::Approx(0.9 * 0.5 + 0.1));  // cos(pi/2) = 0
  CHECK(plain.at(25) == doctest::Approx(0.9 * 0.5 * (1.0 + std::cos(std::numbers::pi / 4)) + 0.1));
  CHECK(plain.at(100) == doctest::Approx(0.1));
  CHECK(plain.at(500) == doctest::Approx(0.1));  // held at alpha after decay_steps
  const CosineDecay warm({.initial_learning_rate = 0.0, .decay_steps = 100, .warmup_target = 1.0, .warmup_steps = 10});
  CHECK(warm.at(0) == 0.0);
  CHECK(warm.at(5) == doctest::Approx(0.5));
  CHECK(warm.at(10) == doctest::Approx(1.0));
  CHECK(warm.at(60) == doctest::Approx(0.5));  // 50 steps into the decay: halfway down
  CHECK(warm.at(110) == doctest::Approx(0.0));
}

TEST_CASE("an optimizer with a schedule uses the rate of its step count, and refuses set_learning_rate") {
  // SGD without momentum: w -= lr(step) g, with g = 1 for every weight.
  optimizers::SGD sgd(PiecewiseConstantDecay({0, 1}, {1.0, 0.5, 0.25}));
  std::vector<float> w = {10.0f, 20.0f};
  const std::vector<float> g = {1.0f, 1.0f};
  CHECK(sgd.learning_rate() == 1.0f);  // step 0
  sgd.apply(w, g);
  CHECK(w[0] == 9.0f);
  CHECK(sgd.learning_rate() == 0.5f);  // step 1
  sgd.apply(w, g);
  CHECK(w[0] == 8.5f);
  sgd.apply(w, g);
  CHECK(w[0] == 8.25f);
  CHECK(sgd.iterations() == 3);
  CHECK_THROWS_WITH_AS(sgd.set_learning_rate(0.1f), doctest::Contains("comes from a schedule"), ValueError);

  // Adam with a constant schedule takes exactly the steps of Adam with that number.
  optimizers::Adam scheduled(ExponentialDecay({.initial_learning_rate = 0.01, .decay_steps = 1, .decay_rate = 1.0}));
  optimizers::Adam fixed(0.01f);
  std::vector<float> a = {1.0f, -2.0f}, b = a;
  const std::vector<float> gradient = {0.3f, -0.7f};
  for (int step = 0; step < 5; ++step) {
    scheduled.apply(a, gradient);
    fixed.apply(b, gradient);
  }
  CHECK(a == b);
  CHECK_THROWS_AS(optimizers::Adam(-1.0f), ValueError);
}
