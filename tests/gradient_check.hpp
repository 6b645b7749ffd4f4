// Helpers the layer tests share: random test data from a generator of the tests' own, a layer
// built on its own with parameters bound to vectors the test owns, and the finite-difference
// gradient check every layer passes.
#pragma once

#include "kiln/layers/layer.hpp"
#include "kiln/tensor.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kiln::testing {

// Test data from a generator of our own, independent of kiln's Rng.
class TestRandom {
 public:
  explicit TestRandom(uint32_t seed) : engine_(seed) {}

  float uniform(float low, float high) {
    return low + (high - low) * static_cast<float>(static_cast<double>(engine_()) / 4294967296.0);
  }

  Tensor tensor(const Shape& shape, float low, float high) {
    Tensor t(shape);
    for (float& v : t.values()) v = uniform(low, high);
    return t;
  }

  // Values whose magnitude is in [min_magnitude, max_magnitude], either sign: clear of ReLU's kink.
  Tensor away_from_zero(const Shape& shape, float min_magnitude, float max_magnitude) {
    Tensor t(shape);
    for (float& v : t.values()) v = (engine_() & 1u ? 1.0f : -1.0f) * uniform(min_magnitude, max_magnitude);
    return t;
  }

 private:
  std::mt19937 engine_;
};

// The parameters of one layer, bound to vectors the test owns (as the model's arena would hold them).
// Gradients start as NaN, so a gradient that backward() never writes fails every check.
struct BoundParameters {
  std::vector<std::vector<float>> values;
  std::vector<std::vector<float>> gradients;
};

inline BoundParameters build_and_bind(Layer& layer, const Shape& sample_shape, uint64_t seed) {
  layer.build(sample_shape);
  BoundParameters storage;
  const std::vector<Parameter*> parameters = layer.parameters();
  storage.values.reserve(parameters.size());  // no reallocation: the pointers below stay valid
  storage.gradients.reserve(parameters.size());
  for (Parameter* parameter : parameters) {
    storage.values.emplace_back(static_cast<size_t>(parameter->size()), 0.0f);
    storage.gradients.emplace_back(static_cast<size_t>(parameter->size()), std::numeric_limits<float>::quiet_NaN());
    parameter->value = storage.values.back().data();
    parameter->gradient = storage.gradients.back().data();
  }
  layer.initialize(seed);
  return storage;
}

// L = sum(w * y), accumulated in double.
inline double weighted_sum(const Tensor& y, const Tensor& weights) {
  REQUIRE(y.shape() == weights.shape());
  double total = 0.0;
  for (int64_t i = 0; i < y.size(); ++i) total += static_cast<double>(weights[i]) * y[i];
  return total;
}

// How far an analytic derivative is from the numeric one, in units of the tolerance:
// <= 1 passes. float32 forward passes with eps ~ 1e-2 leave numeric noise of order 1e-5.
inline double scaled_error(double analytic, double numeric) {
  constexpr double kRelativeTolerance = 1e-2, kAbsoluteTolerance = 1e-3;
  return std::abs(analytic - numeric) /
         (kAbsoluteTolerance + kRelativeTolerance * std::max(std::abs(analytic), std::abs(numeric)));
}

// Central difference of L = sum(w * forward(x)) with respect to `value` (an element of x or of a
// parameter), dividing by the step that float rounding actually took.
template <class Loss>
double numeric_derivative(float& value, float eps, Loss loss) {
  const float saved = value;
  const float plus = saved + eps, minus = saved - eps;
  value = plus;
  const double up = loss();
  value = minus;
  const double down = loss();
  value = saved;
  return (up - down) / (static_cast<double>(plus) - static_cast<double>(minus));
}

// The gradient check: backward(w) against finite differences, for every input element and every
// parameter element. Also checks that the gradients are not all (nearly) zero, which would make
// the comparison vacuous.
inline void check_gradients(Layer& layer, Tensor x, const Tensor& weights, float eps = 1e-2f) {
  REQUIRE(layer.forward(x, true).shape() == weights.shape());
  const Tensor input_gradient = layer.backward(weights);  // a copy: later forwards reuse buffers
  REQUIRE(input_gradient.shape() == x.shape());
  std::vector<std::vector<float>> parameter_gradients;
  for (Parameter* parameter : layer.parameters()) {
    parameter_gradients.emplace_back(parameter->gradient, parameter->gradient + parameter->size());
  }
  auto loss = [&] { return weighted_sum(layer.forward(x, true), weights); };

  double largest = 0.0;
  for (int64_t i = 0; i < x.size(); ++i) {
    const double numeric = numeric_derivative(x[i], eps, loss);
    const double analytic = input_gradient[i];
    largest = std::max(largest, std::abs(numeric));
    CHECK_MESSAGE(scaled_error(analytic, numeric) <= 1.0,
                  "dL/dx[" << i << "]: analytic " << analytic << ", numeric " << numeric);
  }
  CHECK(largest > 1e-2);

  const std::vector<Parameter*> parameters = layer.parameters();
  for (size_t p = 0; p < parameters.size(); ++p) {
    if (!parameters[p]->trainable) {  // the layer's own state: no gradient, ever
      for (float gradient : parameter_gradients[p]) CHECK(gradient == 0.0f);
      continue;
    }
    largest = 0.0;
    for (int64_t i = 0; i < parameters[p]->size(); ++i) {
      const double numeric = numeric_derivative(parameters[p]->value[i], eps, loss);
      const double analytic = parameter_gradients[p][static_cast<size_t>(i)];
      largest = std::max(largest, std::abs(numeric));
      CHECK_MESSAGE(scaled_error(analytic, numeric) <= 1.0, "dL/d" << parameters[p]->name << "[" << i
                                                                    << "]: analytic " << analytic << ", numeric "
                                                                    << numeric);
    }
    CHECK_MESSAGE(largest > 1e-2, parameters[p]->name << "'s gradient is zero everywhere");
  }
}

}  // namespace kiln::testing
