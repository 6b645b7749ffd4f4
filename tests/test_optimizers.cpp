// Tests of Adam and SGD (plain, momentum, Nesterov) against steps computed here: a few by hand,
// with the arithmetic in the comments, and the rest by the Keras formulas written out again in
// double precision. A large arena (past kParallelMinElements) checks the OpenMP path too, and a
// larger one (past kStreamSlotsFromBytes) the slots written with streaming stores.
#include "kiln/optimizers.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using kiln::ValueError;
using kiln::optimizers::Adam;
using kiln::optimizers::SGD;

// Keras's Adam, in double:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  w -= lr_t m / (sqrt(v) + eps)
struct AdamReference {
  double learning_rate = 1e-3, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7;
  std::vector<double> m, v;
  int t = 0;

  void step(std::vector<double>& w, const std::vector<float>& g) {
    if (m.empty()) {
      m.assign(w.size(), 0.0);
      v.assign(w.size(), 0.0);
    }
    ++t;
    const double lr_t =
        learning_rate * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t));
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] = beta_1 * m[i] + (1.0 - beta_1) * g[i];
      v[i] = beta_2 * v[i] + (1.0 - beta_2) * double{g[i]} * g[i];
      w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + epsilon);
    }
  }
};

// Keras's SGD, in double: w -= lr g, or v = momentum v - lr g and w += v (Nesterov: w += momentum v - lr g).
struct SgdReference {
  double learning_rate = 0.01, momentum = 0.0;
  bool nesterov = false;
  std::vector<double> velocity;

  void step(std::vector<double>& w, const std::vector<float>& g) {
    if (velocity.empty()) velocity.assign(w.size(), 0.0);
    for (size_t i = 0; i < w.size(); ++i) {
      if (momentum == 0.0) {
        w[i] -= learning_rate * g[i];
        continue;
      }
      velocity[i] = momentum * velocity[i] - learning_rate * g[i];
      w[i] += nesterov ? momentum * velocity[i] - learning_rate * g[i] : velocity[i];
    }
  }
};

// Every element within tolerance * (1 + |expected|); one assertion per call, naming the worst element.
void check_matches(const std::vector<float>& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.size() == expected.size());
  size_t mismatches = 0, worst = 0;
  double worst_error = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(actual[i] - expected[i]) / (1.0 + std::abs(expected[i]));
    if (error > tolerance) ++mismatches;
    if (error > worst_error) {
      worst_error = error;
      worst = i;
    }
  }
  CHECK_MESSAGE(mismatches == 0, mismatches << " of " << actual.size() << " elements differ; worst is element " << worst
                                            << ": " << actual[worst] << " vs " << expected[worst]);
}

// A large arena whose values and gradients vary element by element.
constexpr int64_t kLargeArena = 3 * kiln::kParallelMinElements + 7;

// Arenas whose slots (two per parameter for Adam, one for SGD's velocity) reach the size that is
// written past the caches, with a last partial cache line (1001 = 62 lines of 16 floats and 9).
constexpr int64_t kStreamedAdamArena = kiln::kStreamSlotsFromBytes / (2 * sizeof(float)) + 1001;
constexpr int64_t kStreamedSgdArena = kiln::kStreamSlotsFromBytes / sizeof(float) + 1001;

std::vector<float> large_values(double phase, int64_t size = kLargeArena) {
  std::vector<float> values(static_cast<size_t>(size));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(std::sin(0.001 * double(i) + phase));
  return values;
}

// Three steps of `optimizer` over a large arena, against its double-precision `reference` fed the
// same gradients (the first from `gradient_phase`).
template <class Optimizer, class Reference>
void check_large_arena_steps(Optimizer& optimizer, Reference& reference, int64_t size, double gradient_phase) {
  std::vector<float> w = large_values(0.0, size);
  std::vector<double> expected(w.begin(), w.end());
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> g = large_values(gradient_phase + step, size);
    optimizer.apply(w, g);
    reference.step(expected, g);
  }
  check_matches(w, expected, 1e-5);
}

}  // namespace

// ---- Adam ---------------------------------------------------------------------------------------

TEST_CASE("Adam: the first step moves each weight by about lr against the gradient's sign") {
  // t = 1: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001) / 0.1, so
  // w -= lr_t * 0.1 g / (sqrt(0.001) |g| + eps) = lr sign(g) / (1 + eps / (sqrt(0.001) |g|)) ~ lr sign(g)
  Adam adam(0.01f);
  std::vector<float> w = {0.5f, -1.0f, 2.0f};
  const std::vector<float> g = {0.1f, -0.2f, 0.0f};
  adam.apply(w, g);
  CHECK(w[0] == doctest::Approx(0.49).epsilon(1e-5));
  CHECK(w[1] == doctest::Approx(-0.99).epsilon(1e-5));
  CHECK(w[2] == 2.0f);  // no gradient, no step
  CHECK(adam.iterations() == 1);
}

TEST_CASE("Adam: three steps on a 3-element arena follow the Keras formula") {
  Adam adam(0.01f, 0.9f, 0.999f, 1e-7f);
  AdamReference reference{.learning_rate = 0.01};
  std::vector<float> w = {0.5f, -1.0f, 2.0f};
  std::vector<double> expected = {0.5, -1.0, 2.0};
  const std::vector<std::vector<float>> gradients = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.3f}, {0.2f, 0.0f, -0.1f}};
  for (const std::vector<float>& g : gradients) {
    adam.apply(w, g);
    reference.step(expected, g);
    check_matches(w, expected, 1e-6);
  }
  CHECK(adam.iterations() == 3);
  // The middle weight's gradient was 0 at step 3, but its momentum still moved it.
  CHECK(w[1] != doctest::Approx(-1.0));
}

TEST_CASE("Adam: other betas and a learning rate changed between steps") {
  Adam adam(0.05f, 0.5f, 0.9f, 1e-3f);
  AdamReference reference{.learning_rate = 0.05, .beta_1 = 0.5, .beta_2 = 0.9, .epsilon = 1e-3};
  std::vector<float> w = {1.0f, 2.0f, 3.0f};
  std::vector<double> expected = {1.0, 2.0, 3.0};
  const std::vector<float> first = {0.3f, -0.1f, 0.01f}, second = {-0.3f, 0.2f, 0.02f};
  adam.apply(w, first);
  reference.step(expected, first);
  check_matches(w, expected, 1e-6);
  adam.set_learning_rate(0.02f);  // what ReduceLROnPlateau does
  reference.learning_rate = 0.02;
  CHECK(adam.learning_rate() == 0.02f);
  adam.apply(w, second);
  reference.step(expected, second);
  check_matches(w, expected, 1e-6);
}

TEST_CASE("Adam: defaults are Keras's, learning_rate 1e-3 and epsilon 1e-7") {
  Adam adam;
  CHECK(adam.name() == "adam");
  CHECK(adam.learning_rate() == 1e-3f);
  // A gradient of 1 moves a weight by lr (to within eps / sqrt(0.001) relative).
  // A gradient of 1e-7 is small enough that epsilon shows: the step is
  // lr_t * 0.1 g / (sqrt(0.001) g + eps) with lr_t = lr sqrt(0.001) / 0.1, which with eps = 1e-7
  // is about 3.07e-5, and would be 2.4e-4 with PyTorch's eps = 1e-8.
  std::vector<float> w = {0.0f, 0.0f};
  adam.apply(w, std::vector<float>{1.0f, 1e-7f});
  CHECK(w[0] == doctest::Approx(-1e-3).epsilon(1e-4).scale(0));  // scale(0): relative, as |w| << 1
  const double lr_t = 1e-3 * std::sqrt(1.0 - 0.999) / (1.0 - 0.9);
  const double g = double{1e-7f};
  const double expected_step = lr_t * (0.1 * g) / (std::sqrt(0.001 * g * g) + 1e-7);
  CHECK(w[1] == doctest::Approx(-expected_step).epsilon(1e-3).scale(0));
}

TEST_CASE("Adam: large arenas (the OpenMP path, and moments written past the caches) match the formula") {
  for (int64_t size : {kLargeArena, kStreamedAdamArena}) {
    CAPTURE(size);
    Adam adam(0.01f);
    AdamReference reference{.learning_rate = 0.01};
    check_large_arena_steps(adam, reference, size, 1.0);
  }
}

TEST_CASE("Adam: bad arguments are ValueErrors") {
  CHECK_THROWS_AS(Adam(0.0f), ValueError);
  CHECK_THROWS_AS(Adam(-1e-3f), ValueError);
  CHECK_THROWS_AS(Adam(1e-3f, 1.0f), ValueError);
  CHECK_THROWS_AS(Adam(1e-3f, 0.9f, 1.0f), ValueError);
  CHECK_THROWS_AS(Adam(1e-3f, -0.1f), ValueError);
}

// ---- SGD ----------------------------------------------------------------------------------------

TEST_CASE("SGD: plain steps are w -= lr g") {
  SGD sgd(0.1f);
  CHECK(sgd.name() == "sgd");
  std::vector<float> w = {1.0f, -2.0f, 0.5f};
  // w - 0.1 * (1, -1, 4) = (0.9, -1.9, 0.1)
  sgd.apply(w, std::vector<float>{1.0f, -1.0f, 4.0f});
  CHECK(w[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(w[1] == doctest::Approx(-1.9).epsilon(1e-6));
  CHECK(w[2] == doctest::Approx(0.1).epsilon(1e-5));
  // again with (2, 2, -1): (0.7, -2.1, 0.2)
  sgd.apply(w, std::vector<float>{2.0f, 2.0f, -1.0f});
  CHECK(w[0] == doctest::Approx(0.7).epsilon(1e-6));
  CHECK(w[1] == doctest::Approx(-2.1).epsilon(1e-6));
  CHECK(w[2] == doctest::Approx(0.2).epsilon(1e-5));
  CHECK(sgd.iterations() == 2);

  SGD defaults;
  CHECK(defaults.learning_rate() == 0.01f);  // Keras's default
  std::vector<float> v = {1.0f};
  defaults.apply(v, std::vector<float>{1.0f});
  CHECK(v[0] == doctest::Approx(0.99).epsilon(1e-6));
}

TEST_CASE("SGD with momentum: v = momentum v - lr g, w += v") {
  // lr 0.1, momentum 0.9, g = 1 every step, w0 = 1:
  //   v1 = -0.1                 w1 = 0.9
  //   v2 = -0.09 - 0.1 = -0.19  w2 = 0.71
  //   v3 = -0.171 - 0.1 = -0.271 w3 = 0.439
  SGD sgd(0.1f, 0.9f);
  std::vector<float> w = {1.0f};
  const std::vector<float> g = {1.0f};
  const double expected[] = {0.9, 0.71, 0.439};
  for (double e : expected) {
    sgd.apply(w, g);
    CHECK(w[0] == doctest::Approx(e).epsilon(1e-6));
  }

  // And against the formula on changing gradients.
  SGD momentum(0.05f, 0.8f);
  SgdReference reference{.learning_rate = 0.05, .momentum = 0.8};
  std::vector<float> weights = {0.5f, -1.0f, 2.0f};
  std::vector<double> reference_weights = {0.5, -1.0, 2.0};
  for (const std::vector<float>& step : {std::vector<float>{0.1f, -0.2f, 0.3f}, {-0.4f, 0.0f, 0.3f}, {1.0f, 2.0f, -3.0f}}) {
    momentum.apply(weights, step);
    reference.step(reference_weights, step);
    check_matches(weights, reference_weights, 1e-6);
  }
}

TEST_CASE("SGD with Nesterov momentum: w += momentum v - lr g, after updating v") {
  // lr 0.1, momentum 0.9, g = 1 every step, w0 = 1:
  //   v1 = -0.1   w1 = 1 + 0.9 (-0.1) - 0.1 = 0.81
  //   v2 = -0.19  w2 = 0.81 + 0.9 (-0.19) - 0.1 = 0.539
  //   v3 = -0.271 w3 = 0.539 + 0.9 (-0.271) - 0.1 = 0.1951
  SGD sgd(0.1f, 0.9f, /*nesterov=*/true);
  std::vector<float> w = {1.0f};
  const std::vector<float> g = {1.0f};
  const double expected[] = {0.81, 0.539, 0.1951};
  for (double e : expected) {
    sgd.apply(w, g);
    CHECK(w[0] == doctest::Approx(e).epsilon(1e-5));
  }

  SGD nesterov(0.05f, 0.8f, true);
  SgdReference reference{.learning_rate = 0.05, .momentum = 0.8, .nesterov = true};
  std::vector<float> weights = {0.5f, -1.0f, 2.0f};
  std::vector<double> reference_weights = {0.5, -1.0, 2.0};
  for (const std::vector<float>& step : {std::vector<float>{0.1f, -0.2f, 0.3f}, {-0.4f, 0.0f, 0.3f}, {1.0f, 2.0f, -3.0f}}) {
    nesterov.apply(weights, step);
    reference.step(reference_weights, step);
    check_matches(weights, reference_weights, 1e-6);
  }
}

TEST_CASE("SGD: large arenas (the OpenMP path, and velocity written past the caches) match the formula, for each variant") {
  struct Variant {
    float momentum;
    bool nesterov;
  };
  for (int64_t size : {kLargeArena, kStreamedSgdArena}) {
    for (Variant variant : {Variant{0.0f, false}, Variant{0.9f, false}, Variant{0.9f, true}}) {
      CAPTURE(size);
      CAPTURE(variant.momentum);
      CAPTURE(variant.nesterov);
      SGD sgd(0.1f, variant.momentum, variant.nesterov);
      SgdReference reference{.learning_rate = 0.1, .momentum = variant.momentum, .nesterov = variant.nesterov};
      check_large_arena_steps(sgd, reference, size, 2.0);
    }
  }
}

TEST_CASE("SGD: bad arguments are ValueErrors") {
  CHECK_THROWS_AS(SGD(0.0f), ValueError);
  CHECK_THROWS_AS(SGD(0.1f, -0.5f), ValueError);
  CHECK_THROWS_AS(SGD(0.1f, 1.5f), ValueError);
}
