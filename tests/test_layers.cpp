// Tests of every layer: Dense (with each activation), Dropout, ActivationLayer and Flatten.
//
// Each layer gets the three tests STYLE.md asks for:
//   - a finite-difference gradient check of the input gradient and of every parameter gradient,
//     with the scalar loss L = sum(w * y) for fixed random weights w, so that dL/dy = w;
//   - forward passes with known values, worked out by hand in the comments;
//   - a save/load round trip, for a model holding every layer type.
// A layer is exercised on its own: built, its parameters bound to vectors owned by the test (as
// the model binds them to its arena), then initialised.
#include "kiln/activations.hpp"
#include "kiln/error.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/layers/activation_layer.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/dropout.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/model.hpp"
#include "kiln/parallel.hpp"
#include "kiln/random.hpp"
#include "kiln/tensor.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "gradient_check.hpp"
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::testing::error_message;
using kiln::testing::contains;
using kiln::testing::BoundParameters;
using kiln::testing::build_and_bind;
using kiln::testing::check_gradients;
using kiln::testing::TestRandom;
using kiln::testing::numeric_derivative;
using kiln::testing::scaled_error;
using kiln::testing::weighted_sum;

using kiln::Activation;
using kiln::Layer;
using kiln::Parameter;
using kiln::Shape;
using kiln::ShapeError;
using kiln::Tensor;
using kiln::ValueError;
using kiln::layers::ActivationLayer;
using kiln::layers::Dense;
using kiln::layers::Dropout;
using kiln::layers::Flatten;

constexpr Activation kAllActivations[] = {Activation::Linear, Activation::ReLU, Activation::Sigmoid, Activation::Tanh,
                                          Activation::Softmax};

// Sets a Dense layer's kernel ([in, units], row-major) and bias through its bound parameters.
void set_dense_parameters(Dense& dense, const std::vector<float>& kernel, const std::vector<float>& bias) {
  const std::vector<Parameter*> parameters = dense.parameters();
  REQUIRE(parameters.size() == 2);
  REQUIRE(parameters[0]->name == "kernel");
  REQUIRE(parameters[1]->name == "bias");
  REQUIRE(parameters[0]->size() == static_cast<int64_t>(kernel.size()));
  REQUIRE(parameters[1]->size() == static_cast<int64_t>(bias.size()));
  std::copy(kernel.begin(), kernel.end(), parameters[0]->value);
  std::copy(bias.begin(), bias.end(), parameters[1]->value);
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }



}  // namespace

// ---- Dense ------------------------------------------------------------------------------------------

TEST_CASE("Dense: input and parameter gradients match finite differences, for every activation") {
  for (Activation activation : kAllActivations) {
    CAPTURE(kiln::activation_name(activation));
    constexpr int64_t batch = 3, inputs = 5, units = 4;
    Dense dense(units, activation);
    dense.set_name("dense");
    BoundParameters storage = build_and_bind(dense, Shape{inputs}, /*seed=*/7);
    TestRandom random(11);
    // A non-zero bias, so the check covers a bias that matters in the forward pass too.
    for (float& b : storage.values[1]) b = random.uniform(-0.5f, 0.5f);

    // For ReLU, keep every pre-activation well clear of 0: a finite step (<= eps * max(|x|, |W|),
    // at most 0.01 here) must not cross the kink.
    Tensor x;
    bool clear_of_kink = false;
    for (int attempt = 0; attempt < 100 && !clear_of_kink; ++attempt) {
      x = random.tensor(Shape{batch, inputs}, -1.0f, 1.0f);
      double smallest = INFINITY;
      for (int64_t r = 0; r < batch; ++r) {
        for (int64_t u = 0; u < units; ++u) {
          double z = dense.bias()(u);
          for (int64_t i = 0; i < inputs; ++i) z += static_cast<double>(x.at(r, i)) * dense.kernel()(i, u);
          smallest = std::min(smallest, std::abs(z));
        }
      }
      clear_of_kink = activation != Activation::ReLU || smallest > 0.05;
    }
    REQUIRE(clear_of_kink);
    const Tensor weights = random.tensor(Shape{batch, units}, -1.0f, 1.0f);
    check_gradients(dense, x, weights);
  }
}

TEST_CASE("Dense: known values, 2 -> 2, for each activation") {
  // W = [[1, 2], [3, 4]] ([in, units]), b = [0.5, -1]
  // x = [[1, 1], [2, -1]]
  // z = x W + b = [[1 + 3 + 0.5, 2 + 4 - 1], [2 - 3 + 0.5, 4 - 4 - 1]] = [[4.5, 5], [-0.5, -1]]
  const std::vector<double> z = {4.5, 5.0, -0.5, -1.0};
  const Tensor x(Shape{2, 2}, {1, 1, 2, -1});
  for (Activation activation : kAllActivations) {
    CAPTURE(kiln::activation_name(activation));
    Dense dense(2, activation);
    BoundParameters storage = build_and_bind(dense, Shape{2}, 1);
    set_dense_parameters(dense, {1, 2, 3, 4}, {0.5f, -1.0f});
    const Tensor& y = dense.forward(x, false);
    REQUIRE(y.shape() == Shape{2, 2});
    std::vector<double> expected(4);
    for (size_t i = 0; i < 4; ++i) {
      switch (activation) {
        case Activation::Linear: expected[i] = z[i]; break;
        case Activation::ReLU: expected[i] = std::max(z[i], 0.0); break;
        case Activation::Sigmoid: expected[i] = sigmoid(z[i]); break;
        case Activation::Tanh: expected[i] = std::tanh(z[i]); break;
        case Activation::Softmax: {
          const size_t row = i / 2;
          expected[i] = std::exp(z[i]) / (std::exp(z[2 * row]) + std::exp(z[2 * row + 1]));
          break;
        }
      }
    }
    for (int64_t i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(expected[static_cast<size_t>(i)]).epsilon(1e-6));
  }
}

TEST_CASE("Dense: known gradients, 2 -> 2, linear") {
  // With the layer above and dy = [[1, 0], [1, 1]]:
  //   dW = x^T dy = [[1*1 + 2*1, 1*0 + 2*1], [1*1 + (-1)*1, 1*0 + (-1)*1]] = [[3, 2], [0, -1]]
  //   db = column sums of dy = [2, 1]
  //   dx = dy W^T = [[1*1 + 0*2, 1*3 + 0*4], [1*1 + 1*2, 1*3 + 1*4]] = [[1, 3], [3, 7]]
  Dense dense(2);
  BoundParameters storage = build_and_bind(dense, Shape{2}, 1);
  set_dense_parameters(dense, {1, 2, 3, 4}, {0.5f, -1.0f});
  const Tensor x(Shape{2, 2}, {1, 1, 2, -1});
  dense.forward(x, true);
  const Tensor& dx = dense.backward(Tensor(Shape{2, 2}, {1, 0, 1, 1}));
  CHECK(storage.gradients[0] == std::vector<float>{3, 2, 0, -1});
  CHECK(storage.gradients[1] == std::vector<float>{2, 1});
  REQUIRE(dx.shape() == Shape{2, 2});
  CHECK(std::vector<float>(dx.values().begin(), dx.values().end()) == std::vector<float>{1, 3, 3, 7});
}

TEST_CASE("Dense: backward_from_preactivation takes dz and skips the activation's derivative") {
  TestRandom random(3);
  const Tensor x = random.tensor(Shape{4, 3}, -1.0f, 1.0f);
  const Tensor dy = random.tensor(Shape{4, 2}, -1.0f, 1.0f);

  Dense fused(2, Activation::Sigmoid);
  BoundParameters fused_storage = build_and_bind(fused, Shape{3}, 5);
  Dense linear(2, Activation::Linear);
  BoundParameters linear_storage = build_and_bind(linear, Shape{3}, 5);
  REQUIRE(fused_storage.values == linear_storage.values);  // same seed, same weights

  // Given dz directly, the sigmoid layer's gradients are the linear layer's for dy = dz.
  fused.forward(x, true);
  const Tensor from_dz = fused.backward_from_preactivation(dy);
  linear.forward(x, true);
  const Tensor from_linear = linear.backward(dy);
  CHECK(fused_storage.gradients == linear_storage.gradients);
  for (int64_t i = 0; i < from_dz.size(); ++i) CHECK(from_dz[i] == doctest::Approx(from_linear[i]).epsilon(1e-6));

  // And backward(dy) is backward_from_preactivation(dy * y (1 - y)).
  const Tensor y = fused.forward(x, true);
  Tensor dz(dy.shape());
  for (int64_t i = 0; i < dz.size(); ++i) dz[i] = dy[i] * y[i] * (1.0f - y[i]);
  const Tensor via_dz = fused.backward_from_preactivation(dz);
  const std::vector<std::vector<float>> gradients_via_dz = fused_storage.gradients;
  const Tensor via_dy = fused.backward(dy);
  for (int64_t i = 0; i < via_dy.size(); ++i) CHECK(via_dy[i] == doctest::Approx(via_dz[i]).epsilon(1e-5));
  for (size_t p = 0; p < 2; ++p) {
    for (size_t i = 0; i < gradients_via_dz[p].size(); ++i) {
      CHECK(fused_storage.gradients[p][i] == doctest::Approx(gradients_via_dz[p][i]).epsilon(1e-5));
    }
  }
}

TEST_CASE("Dense: a 2-D sample shape is an error that suggests Flatten") {
  Dense declared(128, Activation::ReLU, /*input_dim=*/784);
  declared.set_name("dense");
  CHECK(error_message([&] { declared.build(Shape{28, 28}); }) ==
        "Dense 'dense' expects input of 784 features, got 28x28 (did you forget Flatten?)");
  CHECK_THROWS_AS(declared.build(Shape{28, 28}), ShapeError);
  CHECK_THROWS_AS(declared.build(Shape{100}), ShapeError);  // the wrong number of features

  Dense undeclared(10);
  undeclared.set_name("dense_1");
  const std::string message = error_message([&] { undeclared.build(Shape{28, 28}); });
  CHECK(contains(message, "Dense 'dense_1'"));
  CHECK(contains(message, "got 28x28 (did you forget Flatten?)"));
}

TEST_CASE("Dense: a batch with the wrong number of features is a ShapeError naming both") {
  Dense dense(3);
  dense.set_name("dense");
  BoundParameters storage = build_and_bind(dense, Shape{4}, 1);
  const std::string message = error_message([&] { dense.forward(Tensor(Shape{2, 5}), false); });
  CHECK(contains(message, "Dense 'dense'"));
  CHECK(contains(message, "4 features"));
  CHECK(contains(message, "got 5"));
  CHECK_THROWS_AS(dense.forward(Tensor(Shape{2, 5}), false), ShapeError);
}

TEST_CASE("Dense: shapes, parameter count, and bad arguments") {
  Dense dense(10, Activation::Softmax);
  CHECK(dense.build(Shape{784}) == Shape{10});
  CHECK(dense.parameter_count() == 784 * 10 + 10);
  CHECK(dense.output_activation() == Activation::Softmax);
  CHECK(dense.type_name() == "Dense");
  CHECK_THROWS_AS(Dense(0), ValueError);
  CHECK_THROWS_AS(Dense(-3), ValueError);
  CHECK_THROWS_AS(Dense(4, Activation::Linear, -1), ValueError);
  REQUIRE(Dense(4, Activation::Linear, 12).declared_input_shape().has_value());
  CHECK(*Dense(4, Activation::Linear, 12).declared_input_shape() == Shape{12});
}

TEST_CASE("Dense: Glorot-uniform kernel within +-sqrt(6 / (in + out)), zero bias, variance limit^2 / 3") {
  constexpr int64_t inputs = 100, units = 64;
  Dense dense(units);
  BoundParameters storage = build_and_bind(dense, Shape{inputs}, 2024);
  const double limit = std::sqrt(6.0 / static_cast<double>(inputs + units));
  const std::vector<float>& kernel = storage.values[0];
  double sum = 0.0, sum_of_squares = 0.0, largest = 0.0;
  for (float w : kernel) {
    largest = std::max(largest, double{std::abs(w)});
    sum += w;
    sum_of_squares += static_cast<double>(w) * w;
  }
  CHECK(largest <= limit);
  CHECK(largest > 0.9 * limit);  // and the draws do reach out towards the limit
  const double n = static_cast<double>(kernel.size());
  const double mean = sum / n;
  const double variance = sum_of_squares / n - mean * mean;
  // U(-a, a) has mean 0 and variance a^2 / 3; over 6400 draws the sample variance is within ~1%
  // (scale(0): a purely relative tolerance, as the variance is far below 1).
  CHECK(std::abs(mean) < 0.05 * limit);
  CHECK(variance == doctest::Approx(limit * limit / 3.0).epsilon(0.05).scale(0));
  for (float b : storage.values[1]) CHECK(b == 0.0f);

  // The seed decides the values: the same seed repeats them, another does not.
  Dense same(units), other(units);
  CHECK(build_and_bind(same, Shape{inputs}, 2024).values[0] == kernel);
  CHECK(build_and_bind(other, Shape{inputs}, 2025).values[0] != kernel);
}

// ---- Dropout ----------------------------------------------------------------------------------------

TEST_CASE("Dropout: kept values are scaled by 1 / (1 - rate), dropped ones are 0") {
  constexpr float rate = 0.25f;
  Dropout dropout(rate);
  build_and_bind(dropout, Shape{50}, 3);
  TestRandom random(5);
  const Tensor x = random.away_from_zero(Shape{20, 50}, 0.1f, 2.0f);
  const Tensor& y = dropout.forward(x, true);
  REQUIRE(y.shape() == x.shape());
  int64_t dropped = 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0f) {
      ++dropped;
    } else {
      CHECK(y[i] == doctest::Approx(x[i] / (1.0 - rate)).epsilon(1e-6));
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < x.size());
}

TEST_CASE("Dropout: the fraction dropped is close to the rate on a big tensor") {
  for (float rate : {0.1f, 0.5f, 0.8f}) {
    CAPTURE(rate);
    Dropout dropout(rate);
    build_and_bind(dropout, Shape{1000}, 99);
    const Tensor x(Shape{200, 1000}, 1.0f);  // 200,000 elements: the OpenMP path
    const Tensor& y = dropout.forward(x, true);
    int64_t dropped = 0;
    for (float v : y.values()) dropped += v == 0.0f;
    // Binomial: the standard deviation of the fraction is at most sqrt(0.25 / 200000) ~ 0.0011.
    const double fraction = static_cast<double>(dropped) / static_cast<double>(x.size());
    CHECK(std::abs(fraction - rate) < 0.01);
  }
}

TEST_CASE("Dropout: inference, or a rate of 0, returns the input itself") {
  Dropout dropout(0.5f);
  build_and_bind(dropout, Shape{4}, 1);
  const Tensor x(Shape{2, 4}, 3.0f);
  CHECK(&dropout.forward(x, false) == &x);
  const Tensor dy(Shape{2, 4}, 1.0f);
  CHECK(&dropout.backward(dy) == &dy);  // the identity's gradient, after an inference forward

  Dropout none(0.0f);
  build_and_bind(none, Shape{4}, 1);
  CHECK(&none.forward(x, true) == &x);
  CHECK(&none.backward(dy) == &dy);
}

TEST_CASE("Dropout: a rate outside [0, 1) is a ValueError") {
  CHECK_THROWS_AS(Dropout(1.0f), ValueError);
  CHECK_THROWS_AS(Dropout(1.5f), ValueError);
  CHECK_THROWS_AS(Dropout(-0.1f), ValueError);
  CHECK_THROWS_AS(Dropout{std::numeric_limits<float>::quiet_NaN()}, ValueError);
  CHECK_NOTHROW(Dropout(0.0f));
  CHECK_NOTHROW(Dropout(0.999f));
  CHECK(Dropout(0.3f).rate() == 0.3f);
}

TEST_CASE("Dropout: the mask depends on the seed and the step, not on the thread count") {
  const Tensor x(Shape{100, 1000}, 1.0f);  // big enough for the OpenMP path
  auto first_mask = [&](uint64_t seed) {
    Dropout dropout(0.5f);
    build_and_bind(dropout, Shape{1000}, seed);
    const Tensor& y = dropout.forward(x, true);
    return std::vector<float>(y.values().begin(), y.values().end());
  };
  const int threads = kiln::num_threads();
  kiln::set_num_threads(1);
  const std::vector<float> one_thread = first_mask(42);
  kiln::set_num_threads(std::max(threads, 2));
  const std::vector<float> many_threads = first_mask(42);
  kiln::set_num_threads(threads);
  CHECK(one_thread == many_threads);
  CHECK(first_mask(42) == one_thread);
  CHECK(first_mask(43) != one_thread);

  // Each training forward is a new step with a new mask.
  Dropout again(0.5f);
  build_and_bind(again, Shape{1000}, 42);
  const Tensor first = again.forward(x, true);
  const Tensor second = again.forward(x, true);
  CHECK(std::vector<float>(first.values().begin(), first.values().end()) == one_thread);
  CHECK(std::vector<float>(second.values().begin(), second.values().end()) != one_thread);
}

TEST_CASE("Dropout: a batch that starts at sample k of a step's whole batch draws that batch's masks from row k") {
  // A distributed step shares one batch between processes: each part must be masked as the
  // whole batch would be, row for row.
  const Tensor whole_input(Shape{10, 30}, 1.0f);
  Dropout whole(0.5f);
  build_and_bind(whole, Shape{30}, 7);
  const Tensor whole_output = whole.forward(whole_input, true);

  const Tensor part_input(Shape{4, 30}, 1.0f);
  Dropout part(0.5f);
  build_and_bind(part, Shape{30}, 7);
  part.set_first_sample(6);  // rows 6 to 9 of the whole batch
  const Tensor& part_output = part.forward(part_input, true);
  const std::vector<float> expected(whole_output.values().begin() + 6 * 30, whole_output.values().end());
  CHECK(std::vector<float>(part_output.values().begin(), part_output.values().end()) == expected);
}

TEST_CASE("Dropout: dx = dy * y / x, and matches finite differences of the same mask") {
  constexpr float rate = 0.4f;
  constexpr uint64_t seed = 17;
  TestRandom random(8);
  Tensor x = random.away_from_zero(Shape{4, 6}, 0.2f, 1.0f);
  const Tensor weights = random.tensor(Shape{4, 6}, -1.0f, 1.0f);

  Dropout dropout(rate);
  build_and_bind(dropout, Shape{6}, seed);
  const Tensor y = dropout.forward(x, true);
  const Tensor dx = dropout.backward(weights);
  REQUIRE(dx.shape() == x.shape());
  for (int64_t i = 0; i < x.size(); ++i) CHECK(dx[i] == doctest::Approx(weights[i] * (y[i] / x[i])).epsilon(1e-6));

  // The mask of a fresh layer's first step depends only on the seed, so each finite-difference
  // evaluation runs a fresh layer: the same mask every time.
  auto loss = [&] {
    Dropout fresh(rate);
    build_and_bind(fresh, Shape{6}, seed);
    return weighted_sum(fresh.forward(x, true), weights);
  };
  for (int64_t i = 0; i < x.size(); ++i) {
    const double numeric = numeric_derivative(x[i], 1e-2f, loss);
    CHECK_MESSAGE(scaled_error(dx[i], numeric) <= 1.0, "dL/dx[" << i << "]: analytic " << dx[i] << ", numeric " << numeric);
  }
}

// ---- ActivationLayer --------------------------------------------------------------------------------

TEST_CASE("ActivationLayer: the input gradient matches finite differences, for every activation") {
  for (Activation activation : kAllActivations) {
    CAPTURE(kiln::activation_name(activation));
    ActivationLayer layer(activation);
    build_and_bind(layer, Shape{5}, 1);
    CHECK(layer.parameters().empty());
    TestRandom random(21);
    // Magnitudes in [0.1, 2]: clear of ReLU's kink by ten finite steps.
    const Tensor x = random.away_from_zero(Shape{3, 5}, 0.1f, 2.0f);
    const Tensor weights = random.tensor(Shape{3, 5}, -1.0f, 1.0f);
    check_gradients(layer, x, weights);
  }
}

TEST_CASE("ActivationLayer: known values") {
  const Tensor x(Shape{2, 3}, {-1.0f, 0.0f, 2.0f, 0.5f, -3.0f, 1.0f});
  auto forward = [&](Activation activation) {
    ActivationLayer layer(activation);
    layer.build(Shape{3});
    const Tensor& y = layer.forward(x, false);
    REQUIRE(y.shape() == x.shape());
    return std::vector<float>(y.values().begin(), y.values().end());
  };
  CHECK(forward(Activation::Linear) == std::vector<float>(x.values().begin(), x.values().end()));
  CHECK(forward(Activation::ReLU) == std::vector<float>{0.0f, 0.0f, 2.0f, 0.5f, 0.0f, 1.0f});
  const std::vector<float> sigmoid_values = forward(Activation::Sigmoid);
  const std::vector<float> tanh_values = forward(Activation::Tanh);
  CHECK(sigmoid_values[1] == 0.5f);  // sigmoid(0) = 1/2
  CHECK(tanh_values[1] == 0.0f);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(sigmoid_values[i] == doctest::Approx(sigmoid(x[static_cast<int64_t>(i)])).epsilon(1e-6));
    CHECK(tanh_values[i] == doctest::Approx(std::tanh(static_cast<double>(x[static_cast<int64_t>(i)]))).epsilon(1e-6));
  }
  const std::vector<float> softmax_values = forward(Activation::Softmax);
  for (int row = 0; row < 2; ++row) {
    const double denominator =
        std::exp(double{x[row * 3]}) + std::exp(double{x[row * 3 + 1]}) + std::exp(double{x[row * 3 + 2]});
    double row_sum = 0.0;
    for (int j = 0; j < 3; ++j) {
      CHECK(softmax_values[static_cast<size_t>(row * 3 + j)] ==
            doctest::Approx(std::exp(double{x[row * 3 + j]}) / denominator).epsilon(1e-6));
      row_sum += softmax_values[static_cast<size_t>(row * 3 + j)];
    }
    CHECK(row_sum == doctest::Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("ActivationLayer: softmax is exact on round numbers and does not overflow") {
  ActivationLayer softmax(Activation::Softmax);
  softmax.build(Shape{3});
  // softmax(0, ln 2, ln 3) = (1, 2, 3) / 6;  softmax(1000, 1000, 1000) = 1/3 each (no inf / inf).
  const Tensor x(Shape{2, 3}, {0.0f, std::log(2.0f), std::log(3.0f), 1000.0f, 1000.0f, 1000.0f});
  const Tensor& y = softmax.forward(x, false);
  CHECK(y[0] == doctest::Approx(1.0 / 6.0).epsilon(1e-6));
  CHECK(y[1] == doctest::Approx(2.0 / 6.0).epsilon(1e-6));
  CHECK(y[2] == doctest::Approx(3.0 / 6.0).epsilon(1e-6));
  for (int64_t j = 3; j < 6; ++j) CHECK(y[j] == doctest::Approx(1.0 / 3.0).epsilon(1e-6));
}

TEST_CASE("ActivationLayer: sigmoid and softmax agree with double-precision exp over float's range") {
  // 4001 inputs from -100 to 100 (past where e^x leaves float's normal range, both ways).
  const int64_t count = 4001;
  std::vector<float> inputs(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) inputs[static_cast<size_t>(i)] = -100.0f + 0.05f * static_cast<float>(i);
  ActivationLayer sigmoid(Activation::Sigmoid);
  sigmoid.build(Shape{count});
  const Tensor& s = sigmoid.forward(Tensor(Shape{1, count}, inputs), false);
  for (int64_t i = 0; i < count; ++i) {
    const double x = inputs[static_cast<size_t>(i)], expected = 1.0 / (1.0 + std::exp(-x));
    if (expected < 1e-30) {
      CHECK(s[i] < 1e-30f);
    } else {
      CHECK(std::abs(s[i] - expected) <= 3e-7 * expected);
    }
  }
  // Softmax over rows of 10 spread from 0 to -90 below the row's maximum.
  const int64_t rows = 200, classes = 10;
  std::vector<float> logits(static_cast<size_t>(rows * classes));
  for (int64_t i = 0; i < rows * classes; ++i) logits[static_cast<size_t>(i)] = -0.045f * static_cast<float>((i * 7919) % 2000);
  ActivationLayer softmax(Activation::Softmax);
  softmax.build(Shape{classes});
  const Tensor& p = softmax.forward(Tensor(Shape{rows, classes}, logits), false);
  for (int64_t r = 0; r < rows; ++r) {
    // The reference takes the same float differences z - max(z): their rounding is softmax's, not exp's.
    const float* z = logits.data() + r * classes;
    const float z_max = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(double{z[j] - z_max});
    for (int64_t j = 0; j < classes; ++j) {
      const double expected = std::exp(double{z[j] - z_max}) / sum;
      CHECK(std::abs(p.at(r, j) - expected) <= 5e-7 * expected + 1e-37);
    }
  }
}

TEST_CASE("ActivationLayer: softmax needs a flat sample; the layer reports its activation for fusing") {
  ActivationLayer softmax(Activation::Softmax);
  softmax.set_name("activation");
  const std::string message = error_message([&] { softmax.build(Shape{4, 4}); });
  CHECK(contains(message, "Activation 'activation'"));
  CHECK(contains(message, "4x4"));
  CHECK_THROWS_AS(softmax.build(Shape{4, 4}), ShapeError);

  ActivationLayer tanh_layer(Activation::Tanh);
  CHECK(tanh_layer.build(Shape{4, 4}) == Shape{4, 4});  // element-wise: any shape
  CHECK(tanh_layer.output_activation() == Activation::Tanh);
  const Tensor dz(Shape{1, 2}, {1.0f, 2.0f});
  CHECK(&tanh_layer.backward_from_preactivation(dz) == &dz);
}

TEST_CASE("activation names are Keras's, and an unknown name is a ValueError") {
  for (Activation activation : kAllActivations) {
    CHECK(kiln::activation_from_name(kiln::activation_name(activation)) == activation);
  }
  CHECK(kiln::activation_name(Activation::ReLU) == "relu");
  CHECK(kiln::activation_name(Activation::Softmax) == "softmax");
  CHECK_THROWS_AS(kiln::activation_from_name("gelu"), ValueError);
}

// ---- Flatten ----------------------------------------------------------------------------------------

TEST_CASE("Flatten: [b, 2, 3] -> [b, 6] in row-major order, and the gradient goes back to [b, 2, 3]") {
  Flatten flatten;
  CHECK(flatten.build(Shape{2, 3}) == Shape{6});
  CHECK(flatten.parameters().empty());
  std::vector<float> values(12);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  const Tensor x(Shape{2, 2, 3}, values);
  const Tensor& y = flatten.forward(x, true);
  CHECK(y.shape() == Shape{2, 6});
  CHECK(std::vector<float>(y.values().begin(), y.values().end()) == values);
  const Tensor dy(Shape{2, 6}, values);
  const Tensor& dx = flatten.backward(dy);
  CHECK(dx.shape() == Shape{2, 2, 3});
  CHECK(std::vector<float>(dx.values().begin(), dx.values().end()) == values);
}

TEST_CASE("Flatten: the input gradient matches finite differences") {
  Flatten flatten;
  build_and_bind(flatten, Shape{2, 3}, 1);
  TestRandom random(4);
  check_gradients(flatten, random.tensor(Shape{3, 2, 3}, -1.0f, 1.0f), random.tensor(Shape{3, 6}, -1.0f, 1.0f));
}

TEST_CASE("Flatten: a declared input shape is checked") {
  Flatten flatten(Shape{28, 28});
  flatten.set_name("flatten");
  REQUIRE(flatten.declared_input_shape().has_value());
  CHECK(*flatten.declared_input_shape() == Shape{28, 28});
  const std::string message = error_message([&] { flatten.build(Shape{32, 32}); });
  CHECK(contains(message, "Flatten 'flatten'"));
  CHECK(contains(message, "28x28"));
  CHECK(contains(message, "32x32"));
  CHECK(flatten.build(Shape{28, 28}) == Shape{784});
}

// ---- save / load ------------------------------------------------------------------------------------

TEST_CASE("save_weights / load_weights round-trip a model with every layer type") {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("kiln_test_layers_" + std::to_string(getpid()) + ".weights.npz");
  auto make_model = [](uint64_t seed) {
    kiln::set_random_seed(seed);
    return kiln::Sequential({
        Flatten(Shape{2, 3}),
        Dense(5, Activation::ReLU),
        Dropout(0.5f),
        ActivationLayer(Activation::Tanh),
        Dense(3, Activation::Softmax),
    });
  };
  kiln::Sequential saved = make_model(1);
  REQUIRE(saved.built());
  saved.save_weights(path.string());

  // The file holds each parameter under "<layer>/<parameter>" with its shape.
  const std::vector<kiln::io::NamedArray> arrays = kiln::io::read_npz(path.string());
  REQUIRE(arrays.size() == 4);
  CHECK(arrays[0].name == "dense/kernel");
  CHECK(arrays[0].shape == Shape{6, 5});
  CHECK(arrays[1].name == "dense/bias");
  CHECK(arrays[2].name == "dense_1/kernel");
  CHECK(arrays[2].shape == Shape{5, 3});
  CHECK(arrays[3].name == "dense_1/bias");

  kiln::Sequential loaded = make_model(2);
  CHECK(loaded.get_weights() != saved.get_weights());
  loaded.load_weights(path.string());
  CHECK(loaded.get_weights() == saved.get_weights());

  TestRandom random(6);
  const Tensor x = random.tensor(Shape{4, 2, 3}, -1.0f, 1.0f);
  const Tensor expected = saved.predict(x);
  const Tensor actual = loaded.predict(x);
  CHECK(std::vector<float>(actual.values().begin(), actual.values().end()) ==
        std::vector<float>(expected.values().begin(), expected.values().end()));
  std::filesystem::remove(path);
}
