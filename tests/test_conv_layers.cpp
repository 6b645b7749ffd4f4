// Tests of the convnet layers: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
// Reshape and BatchNormalization. Each gets a finite-difference gradient check (gradient_check.hpp), and its forward
// pass is compared with a plain loop written here the obvious way, straight from the definition.
#include "kiln/error.hpp"
#include "kiln/layers/batch_normalization.hpp"
#include "kiln/layers/conv2d.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/layers/pooling2d.hpp"
#include "kiln/layers/reshape.hpp"
#include "kiln/losses.hpp"
#include "kiln/model.hpp"
#include "kiln/model_file.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/parallel.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "gradient_check.hpp"
#include "temporary_directory.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

namespace {

using kiln::Activation;
using kiln::Shape;
using kiln::ShapeError;
using kiln::Tensor;
using kiln::ValueError;
using kiln::layers::AveragePooling2D;
using kiln::layers::BatchNormalization;
using kiln::layers::Conv2D;
using kiln::layers::GlobalAveragePooling2D;
using kiln::layers::MaxPooling2D;
using kiln::layers::Padding;
using kiln::layers::Reshape;
using kiln::layers::Size2D;
using kiln::testing::build_and_bind;
using kiln::testing::check_gradients;
using kiln::testing::contains;
using kiln::testing::error_message;
using kiln::testing::TestRandom;

struct Geometry {
  int64_t kh, kw, sh, sw;
  Padding padding;
};

// Keras's output length and leading padding along one axis (window2d.hpp states the rule).
void expected_axis(int64_t in, int64_t k, int64_t s, Padding padding, int64_t& out, int64_t& pad) {
  if (padding == Padding::Valid) {
    out = (in - k) / s + 1;
    pad = 0;
  } else {
    out = (in + s - 1) / s;
    pad = std::max<int64_t>((out - 1) * s + k - in, 0) / 2;
  }
}

// The convolution straight from its definition, in double:
// y[n, oh, ow, f] = b[f] + sum_{i, j, c} x[n, oh*sh - pt + i, ow*sw - pl + j, c] K[i, j, c, f].
std::vector<double> direct_convolution(const Tensor& x, const std::vector<float>& kernel, const std::vector<float>& bias,
                                       int64_t filters, const Geometry& g) {
  const int64_t batch = x.dim(0), h = x.dim(1), w = x.dim(2), channels = x.dim(3);
  int64_t oh_count, ow_count, pad_top, pad_left;
  expected_axis(h, g.kh, g.sh, g.padding, oh_count, pad_top);
  expected_axis(w, g.kw, g.sw, g.padding, ow_count, pad_left);
  std::vector<double> y;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t oh = 0; oh < oh_count; ++oh) {
      for (int64_t ow = 0; ow < ow_count; ++ow) {
        for (int64_t f = 0; f < filters; ++f) {
          double sum = bias.empty() ? 0.0 : bias[static_cast<size_t>(f)];
          for (int64_t i = 0; i < g.kh; ++i) {
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t ih = oh * g.sh - pad_top + i, iw = ow * g.sw - pad_left + j;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              for (int64_t c = 0; c < channels; ++c) {
                sum += static_cast<double>(x[((n * h + ih) * w + iw) * channels + c]) *
                       kernel[static_cast<size_t>(((i * g.kw + j) * channels + c) * filters + f)];
              }
            }
          }
          y.push_back(sum);
        }
      }
    }
  }
  return y;
}

void check_close(const Tensor& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.size() == static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < actual.size(); ++i) {
    CHECK_MESSAGE(std::abs(actual[i] - expected[static_cast<size_t>(i)]) <= tolerance,
                  "element " << i << ": " << actual[i] << " against " << expected[static_cast<size_t>(i)]);
  }
}

const Geometry kGeometries[] = {
    {3, 3, 1, 1, Padding::Valid}, {3, 2, 1, 1, Padding::Same}, {3, 3, 2, 2, Padding::Same},
    {2, 3, 2, 1, Padding::Valid}, {1, 1, 1, 1, Padding::Valid}, {4, 4, 3, 2, Padding::Same},
};

std::string describe(const Geometry& g) {
  std::ostringstream text;
  text << g.kh << "x" << g.kw << " kernel, strides " << g.sh << "x" << g.sw << ", "
       << (g.padding == Padding::Same ? "same" : "valid");
  return text.str();
}

// One forward and backward pass of `layer` on `threads` threads: its output, input gradient, and
// every parameter's value and gradient, in one vector to compare bit for bit.
std::vector<float> pass_on_threads(kiln::Layer& layer, const kiln::testing::BoundParameters& bound, const Tensor& x,
                                   const Tensor& dy, int threads) {
  kiln::set_num_threads(threads);
  std::vector<float> result;
  const Tensor& y = layer.forward(x, true);
  result.insert(result.end(), y.values().begin(), y.values().end());
  const Tensor& dx = layer.backward(dy);
  result.insert(result.end(), dx.values().begin(), dx.values().end());
  for (const auto& values : bound.values) result.insert(result.end(), values.begin(), values.end());
  for (const auto& gradient : bound.gradients) result.insert(result.end(), gradient.begin(), gradient.end());
  kiln::set_num_threads(0);
  return result;
}

}  // namespace

// ---- Conv2D -----------------------------------------------------------------------------------------

TEST_CASE("Conv2D: output shapes and padding follow Keras's rules") {
  CHECK(Conv2D(32, 3).build(Shape{28, 28, 1}) == Shape{26, 26, 32});
  CHECK(Conv2D(8, 3, {.padding = Padding::Same}).build(Shape{28, 28, 1}) == Shape{28, 28, 8});
  CHECK(Conv2D(8, 3, {.strides = 2, .padding = Padding::Same}).build(Shape{5, 5, 3}) == Shape{3, 3, 8});
  CHECK(Conv2D(8, 3, {.strides = 2}).build(Shape{5, 5, 3}) == Shape{2, 2, 8});
  CHECK(Conv2D(4, {2, 5}).build(Shape{6, 7, 2}) == Shape{5, 3, 4});
  Conv2D conv(16, {3, 2});
  conv.build(Shape{10, 10, 3});
  REQUIRE(conv.parameters().size() == 2);
  CHECK(conv.parameters()[0]->shape == Shape{3, 2, 3, 16});  // Keras's [kh, kw, in, filters]
  CHECK(conv.parameters()[1]->shape == Shape{16});
  Conv2D no_bias(16, 3, {.use_bias = false});
  no_bias.build(Shape{10, 10, 3});
  CHECK(no_bias.parameters().size() == 1);
}

TEST_CASE("Conv2D: forward equals the convolution computed from its definition") {
  TestRandom random(11);
  for (const Geometry& g : kGeometries) {
    CAPTURE(describe(g));
    for (bool use_bias : {true, false}) {
      Conv2D conv(3, {g.kh, g.kw}, {.strides = {g.sh, g.sw}, .padding = g.padding, .use_bias = use_bias});
      auto bound = build_and_bind(conv, Shape{7, 6, 2}, 5);
      if (use_bias) {
        for (float& b : bound.values[1]) b = random.uniform(-1.0f, 1.0f);  // zero-initialised otherwise
      }
      const Tensor x = random.tensor(Shape{2, 7, 6, 2}, -1.0f, 1.0f);
      const Tensor& y = conv.forward(x, false);
      const std::vector<float> no_bias;
      check_close(y, direct_convolution(x, bound.values[0], use_bias ? bound.values[1] : no_bias, 3, g), 1e-5);
    }
  }
}

TEST_CASE("Conv2D: input, kernel and bias gradients match finite differences") {
  TestRandom random(12);
  for (const Geometry& g : kGeometries) {
    for (Activation activation : {Activation::Linear, Activation::Tanh}) {
      CAPTURE(describe(g));
      Conv2D conv(3, {g.kh, g.kw}, {.strides = {g.sh, g.sw}, .padding = g.padding, .activation = activation});
      auto bound = build_and_bind(conv, Shape{5, 6, 2}, 7);
      for (float& b : bound.values[1]) b = random.uniform(-0.5f, 0.5f);
      const Tensor x = random.tensor(Shape{2, 5, 6, 2}, -1.0f, 1.0f);
      const Tensor& y = conv.forward(x, true);
      check_gradients(conv, x, random.tensor(y.shape(), -1.0f, 1.0f));
    }
  }
}

TEST_CASE("Conv2D: bad shapes and arguments are errors naming the layer") {
  Conv2D conv(4, 3);
  conv.set_name("conv2d_7");
  CHECK(contains(error_message<ShapeError>([&] { conv.build(Shape{28, 28}); }), "Reshape({height, width, 1})"));
  CHECK(contains(error_message<ShapeError>([&] { conv.build(Shape{2, 2, 1}); }), "conv2d_7"));
  CHECK(contains(error_message<ShapeError>([&] { conv.build(Shape{2, 2, 1}); }), "does not fit a 2x2 image"));
  conv.build(Shape{8, 8, 3});
  std::vector<float> kernel(static_cast<size_t>(conv.parameters()[0]->size())), bias(4);
  conv.parameters()[0]->value = kernel.data();
  conv.parameters()[1]->value = bias.data();
  CHECK(contains(error_message<ShapeError>([&] { conv.forward(Tensor(Shape{2, 8, 8, 1}), false); }), "8x8x3"));
  CHECK_THROWS_AS(Conv2D(0, 3), ValueError);
  CHECK_THROWS_AS(Conv2D(4, {3, 0}), ValueError);
  CHECK(contains(error_message<ValueError>([] { Conv2D(4, 3, {.strides = {1, -1}}); }), "strides"));
}

TEST_CASE("Conv2D: the same bits on one thread and on several") {
  TestRandom random(13);
  Conv2D conv(16, 3, {.padding = Padding::Same, .activation = Activation::ReLU});
  auto bound = build_and_bind(conv, Shape{20, 20, 8}, 3);
  const Tensor x = random.tensor(Shape{16, 20, 20, 8}, -1.0f, 1.0f);
  const Tensor dy = random.tensor(Shape{16, 20, 20, 16}, -1.0f, 1.0f);
  auto run = [&](int threads) { return pass_on_threads(conv, bound, x, dy, threads); };
  const std::vector<float> one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

// ---- pooling ----------------------------------------------------------------------------------------

TEST_CASE("MaxPooling2D: known values, and the gradient goes to each window's maximum") {
  MaxPooling2D pool;  // 2x2, strides 2
  CHECK(pool.build(Shape{4, 4, 1}) == Shape{2, 2, 1});
  Tensor x(Shape{1, 4, 4, 1});
  const float values[] = {1, 5, 2, 0,  //
                          3, 4, 8, 1,  //
                          0, 0, 1, 1,  //
                          9, 2, 1, 7};
  std::copy(std::begin(values), std::end(values), x.data());
  const Tensor& y = pool.forward(x, true);
  CHECK(std::vector<float>(y.values().begin(), y.values().end()) == std::vector<float>{5, 8, 9, 7});
  Tensor dy(Shape{1, 2, 2, 1});
  for (int i = 0; i < 4; ++i) dy[i] = static_cast<float>(10 * (i + 1));
  const Tensor& dx = pool.backward(dy);
  CHECK(std::vector<float>(dx.values().begin(), dx.values().end()) ==
        std::vector<float>{0, 10, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 30, 0, 0, 40});
}

TEST_CASE("MaxPooling2D and AveragePooling2D: forward from the definition, gradients by finite differences") {
  TestRandom random(14);
  const Geometry geometries[] = {{2, 2, 2, 2, Padding::Valid}, {3, 3, 2, 2, Padding::Same}, {3, 2, 1, 1, Padding::Valid},
                                 {2, 2, 1, 1, Padding::Same}};
  for (const Geometry& g : geometries) {
    CAPTURE(describe(g));
    const kiln::layers::Pooling2DOptions options{.strides = Size2D{g.sh, g.sw}, .padding = g.padding};
    MaxPooling2D max_pool({g.kh, g.kw}, options);
    AveragePooling2D average_pool({g.kh, g.kw}, options);
    max_pool.build(Shape{5, 6, 3});
    average_pool.build(Shape{5, 6, 3});
    const Tensor x = random.tensor(Shape{2, 5, 6, 3}, -1.0f, 1.0f);

    int64_t oh_count, ow_count, pad_top, pad_left;
    expected_axis(5, g.kh, g.sh, g.padding, oh_count, pad_top);
    expected_axis(6, g.kw, g.sw, g.padding, ow_count, pad_left);
    std::vector<double> maxima, means;
    for (int64_t n = 0; n < 2; ++n) {
      for (int64_t oh = 0; oh < oh_count; ++oh) {
        for (int64_t ow = 0; ow < ow_count; ++ow) {
          for (int64_t c = 0; c < 3; ++c) {
            double largest = -std::numeric_limits<double>::infinity(), sum = 0.0;
            int count = 0;
            for (int64_t i = 0; i < g.kh; ++i) {
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - pad_top + i, iw = ow * g.sw - pad_left + j;
                if (ih < 0 || ih >= 5 || iw < 0 || iw >= 6) continue;  // padding is left out
                const double v = x[((n * 5 + ih) * 6 + iw) * 3 + c];
                largest = std::max(largest, v);
                sum += v;
                ++count;
              }
            }
            maxima.push_back(largest);
            means.push_back(sum / count);
          }
        }
      }
    }
    check_close(max_pool.forward(x, true), maxima, 0.0);
    check_close(average_pool.forward(x, true), means, 1e-6);
    check_gradients(max_pool, x, random.tensor(max_pool.forward(x, true).shape(), -1.0f, 1.0f), 1e-3f);
    check_gradients(average_pool, x, random.tensor(average_pool.forward(x, true).shape(), -1.0f, 1.0f));
  }
}

TEST_CASE("GlobalAveragePooling2D: each channel's mean, and its gradient spread evenly") {
  GlobalAveragePooling2D pool;
  CHECK(pool.build(Shape{2, 3, 2}) == Shape{2});
  Tensor x(Shape{1, 2, 3, 2});
  for (int i = 0; i < 12; ++i) x[i] = static_cast<float>(i);  // channel 0: 0, 2, ..., 10; channel 1: 1, 3, ..., 11
  const Tensor& y = pool.forward(x, true);
  CHECK(y[0] == doctest::Approx(5.0));
  CHECK(y[1] == doctest::Approx(6.0));
  TestRandom random(15);
  check_gradients(pool, random.tensor(Shape{3, 2, 3, 2}, -1.0f, 1.0f), random.tensor(Shape{3, 2}, -1.0f, 1.0f));
}

TEST_CASE("pooling: bad shapes and arguments are errors naming the layer") {
  MaxPooling2D pool(3);
  pool.set_name("max_pooling2d");
  CHECK(contains(error_message<ShapeError>([&] { pool.build(Shape{2, 8, 1}); }), "max_pooling2d"));
  CHECK(contains(error_message<ShapeError>([&] { pool.build(Shape{8, 8}); }), "height x width x channels"));
  CHECK_THROWS_AS(MaxPooling2D(0), ValueError);
  CHECK_THROWS_AS(AveragePooling2D(2, {.strides = Size2D{0}}), ValueError);
  CHECK_THROWS_AS(GlobalAveragePooling2D().build(Shape{4, 4}), ShapeError);
}

// ---- Reshape ----------------------------------------------------------------------------------------

TEST_CASE("Reshape: a view in the same order, -1 worked out, a mismatch an error") {
  Reshape reshape({4, -1, 1});
  CHECK(reshape.build(Shape{2, 6}) == Shape{4, 3, 1});
  TestRandom random(16);
  const Tensor x = random.tensor(Shape{2, 2, 6}, -1.0f, 1.0f);
  const Tensor& y = reshape.forward(x, true);
  CHECK(y.shape() == Shape{2, 4, 3, 1});
  CHECK(y.data() == x.data());
  check_gradients(reshape, x, random.tensor(Shape{2, 4, 3, 1}, -1.0f, 1.0f));
  CHECK(contains(error_message<ShapeError>([] { Reshape({5, -1}).build(Shape{12}); }), "cannot reshape 12"));
  CHECK_THROWS_AS(Reshape({-1, -1}).build(Shape{12}), ValueError);
  CHECK_THROWS_AS(Reshape({0, 12}).build(Shape{12}), ValueError);
}

// ---- BatchNormalization ---------------------------------------------------------------------------

TEST_CASE("BatchNormalization: training normalises each channel by its batch statistics and moves the averages") {
  BatchNormalization normalization;
  auto bound = build_and_bind(normalization, Shape{3, 2}, 1);  // gamma, beta, moving_mean, moving_variance
  REQUIRE(bound.values.size() == 4);
  CHECK(bound.values[0] == std::vector<float>{1, 1});
  CHECK(bound.values[3] == std::vector<float>{1, 1});
  bound.values[0] = {2.0f, 0.5f};  // gamma
  bound.values[1] = {1.0f, -1.0f};  // beta
  TestRandom random(21);
  const Tensor x = random.tensor(Shape{4, 3, 2}, -2.0f, 3.0f);
  const Tensor& y = normalization.forward(x, true);
  for (int64_t c = 0; c < 2; ++c) {
    double mean = 0.0, variance = 0.0;
    for (int64_t r = 0; r < 12; ++r) mean += x[r * 2 + c] / 12.0;
    for (int64_t r = 0; r < 12; ++r) variance += (x[r * 2 + c] - mean) * (x[r * 2 + c] - mean) / 12.0;
    for (int64_t r = 0; r < 12; ++r) {
      const double expected = bound.values[0][c] * (x[r * 2 + c] - mean) / std::sqrt(variance + 1e-3) + bound.values[1][c];
      CHECK(y[r * 2 + c] == doctest::Approx(expected).epsilon(1e-5));
    }
    CHECK(bound.values[2][c] == doctest::Approx(0.01 * mean).epsilon(1e-5));
    CHECK(bound.values[3][c] == doctest::Approx(0.99 + 0.01 * variance).epsilon(1e-5));
  }
}

TEST_CASE("BatchNormalization: inference uses the moving statistics, and its gradient treats them as constants") {
  BatchNormalization normalization({.epsilon = 0.25f});
  auto bound = build_and_bind(normalization, Shape{2}, 1);
  bound.values[0] = {3.0f, 1.0f};
  bound.values[1] = {0.5f, 0.0f};
  bound.values[2] = {1.0f, -2.0f};
  bound.values[3] = {4.0f - 0.25f, 1.0f - 0.25f};  // variance + epsilon = 4 and 1
  Tensor x(Shape{1, 2});
  x[0] = 5.0f;
  x[1] = 0.0f;
  const Tensor& y = normalization.forward(x, false);
  CHECK(y[0] == doctest::Approx(3.0 * (5.0 - 1.0) / 2.0 + 0.5));
  CHECK(y[1] == doctest::Approx(1.0 * (0.0 + 2.0) / 1.0));
  CHECK(bound.values[2] == std::vector<float>{1.0f, -2.0f});  // inference moves nothing
  Tensor dy(Shape{1, 2});
  dy[0] = 1.0f;
  dy[1] = 4.0f;
  const Tensor& dx = normalization.backward(dy);
  CHECK(dx[0] == doctest::Approx(3.0 / 2.0));
  CHECK(dx[1] == doctest::Approx(4.0));
}

TEST_CASE("BatchNormalization: gradients match finite differences, on flat features and on images") {
  TestRandom random(22);
  for (const Shape& sample : {Shape{5}, Shape{3, 4, 3}}) {
    BatchNormalization normalization;
    auto bound = build_and_bind(normalization, sample, 1);
    for (float& gamma : bound.values[0]) gamma = random.uniform(0.5f, 2.0f);
    for (float& beta : bound.values[1]) beta = random.uniform(-1.0f, 1.0f);
    const Tensor x = random.tensor(sample.with_batch(6), -1.0f, 1.0f);
    check_gradients(normalization, x, random.tensor(sample.with_batch(6), -1.0f, 1.0f), 1e-3f);
  }
}

TEST_CASE("BatchNormalization: the same bits on one thread and on several") {
  TestRandom random(23);
  BatchNormalization normalization;
  auto bound = build_and_bind(normalization, Shape{12, 12, 16}, 1);
  const Tensor x = random.tensor(Shape{32, 12, 12, 16}, -1.0f, 1.0f);
  const Tensor dy = random.tensor(Shape{32, 12, 12, 16}, -1.0f, 1.0f);
  auto run = [&](int threads) {
    bound.values[2].assign(16, 0.0f);  // the moving statistics start where the first run's did
    bound.values[3].assign(16, 1.0f);
    return pass_on_threads(normalization, bound, x, dy, threads);
  };
  const std::vector<float> one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

TEST_CASE("BatchNormalization in a model: non-trainable statistics, untouched by the optimizer, kept by a model file") {
  kiln::set_random_seed(4);
  kiln::Sequential model({kiln::layers::Dense(3, Activation::ReLU, 2), BatchNormalization(), kiln::layers::Dense(2)});
  model.compile(kiln::optimizers::Adam(0.1f), kiln::losses::MeanSquaredError());
  std::ostringstream summary;
  model.summary(summary);
  CHECK(contains(summary.str(), "batch_normalization (BatchNormalization)"));
  CHECK(contains(summary.str(), "Non-trainable params: 6 "));
  CHECK(contains(summary.str(), "Trainable params: 23 "));  // 9 + 6 + 8
  TestRandom random(24);
  const Tensor x = random.tensor(Shape{8, 2}, -1.0f, 1.0f), y = random.tensor(Shape{8, 2}, -1.0f, 1.0f);
  kiln::Layer& layer = model.layer("batch_normalization");
  const kiln::Parameter& moving_mean = *layer.parameters()[2];
  for (int step = 0; step < 3; ++step) {
    // What the layer will write: 0.99 of the old average plus 0.01 of its input's batch mean. An
    // optimizer step on it (Adam's first step moves a weight by about its rate, 0.1) would show.
    const Tensor hidden = model.layer(0).forward(x, false);
    std::vector<double> expected(3);
    for (int64_t c = 0; c < 3; ++c) {
      double mean = 0.0;
      for (int64_t r = 0; r < 8; ++r) mean += hidden[r * 3 + c] / 8.0;
      expected[static_cast<size_t>(c)] = 0.99 * moving_mean.value[c] + 0.01 * mean;
    }
    model.train_on_batch(x, y);
    for (int64_t c = 0; c < 3; ++c) CHECK(moving_mean.value[c] == doctest::Approx(expected[static_cast<size_t>(c)]).epsilon(1e-5));
  }

  kiln::testing::TemporaryDirectory folder;
  model.save(folder.file("normalized.kiln"));
  kiln::Sequential loaded = kiln::load_model(folder.file("normalized.kiln"));
  CHECK(loaded.get_weights() == model.get_weights());
  const Tensor expected = model.predict(x), actual = loaded.predict(x);
  CHECK(std::vector<float>(actual.values().begin(), actual.values().end()) ==
        std::vector<float>(expected.values().begin(), expected.values().end()));
}

// ---- in a model ---------------------------------------------------------------------------------------

kiln::Sequential small_convnet() {
  kiln::set_random_seed(3);
  kiln::Sequential model({Reshape({8, 8, 1}, Shape{8, 8}), Conv2D(4, 3, {.activation = Activation::ReLU}), MaxPooling2D(),
                          Conv2D(6, 2, {.padding = Padding::Same}), AveragePooling2D(), GlobalAveragePooling2D(),
                          kiln::layers::Dense(3, Activation::Softmax)});
  model.compile(kiln::optimizers::Adam(1e-2f), kiln::losses::SparseCategoricalCrossentropy());
  return model;
}

TEST_CASE("a convnet: Keras's layer names and shapes in summary(), and it learns") {
  kiln::Sequential model = small_convnet();
  std::ostringstream summary;
  model.summary(summary);
  CHECK(contains(summary.str(), "conv2d (Conv2D)"));
  CHECK(contains(summary.str(), "conv2d_1 (Conv2D)"));
  CHECK(contains(summary.str(), "max_pooling2d (MaxPooling2D)"));
  CHECK(contains(summary.str(), "global_average_pooling2d"));
  CHECK(contains(summary.str(), "(None, 6, 6, 4)"));
  // Three classes told apart by where a bright square is: left, middle or right.
  TestRandom random(17);
  Tensor x(Shape{60, 8, 8}), y(Shape{60});
  for (int64_t n = 0; n < 60; ++n) {
    const int64_t label = n % 3;
    y[n] = static_cast<float>(label);
    for (int64_t p = 0; p < 64; ++p) x[n * 64 + p] = random.uniform(0.0f, 0.2f);
    for (int64_t r = 2; r < 5; ++r) {
      for (int64_t c = 0; c < 3; ++c) x[n * 64 + r * 8 + label * 3 + c - (label == 2 ? 1 : 0)] += 1.0f;
    }
  }
  const kiln::History history = model.fit(x, y, {.batch_size = 10, .epochs = 30, .verbose = 0});
  const std::vector<double>& loss = history.history.at("loss");
  CHECK(loss.back() < 0.5 * loss.front());
}

TEST_CASE("a convnet survives a model file: the same predictions after load_model") {
  kiln::testing::TemporaryDirectory folder;
  kiln::Sequential model = small_convnet();
  const std::string path = folder.file("convnet.kiln");
  model.save(path);
  kiln::Sequential loaded = kiln::load_model(path);
  TestRandom random(18);
  const Tensor x = random.tensor(Shape{5, 8, 8}, 0.0f, 1.0f);
  const Tensor expected = model.predict(x), actual = loaded.predict(x);
  CHECK(std::vector<float>(actual.values().begin(), actual.values().end()) ==
        std::vector<float>(expected.values().begin(), expected.values().end()));
  CHECK(loaded.layer("max_pooling2d").type_name() == "MaxPooling2D");
}

TEST_CASE("a convnet trains to the same bits on 1, 2 and 3 threads") {
  TestRandom random(19);
  const Tensor x = random.tensor(Shape{64, 12, 12}, 0.0f, 1.0f);
  Tensor y(Shape{64});
  for (int64_t n = 0; n < 64; ++n) y[n] = static_cast<float>(n % 3);
  auto train = [&](int threads) {
    kiln::set_num_threads(threads);
    kiln::set_random_seed(9);
    kiln::Sequential model({Reshape({12, 12, 1}, Shape{12, 12}), Conv2D(16, 3, {.activation = Activation::ReLU}),
                            BatchNormalization(), MaxPooling2D(), Conv2D(32, 3, {.padding = Padding::Same}),
                            GlobalAveragePooling2D(), kiln::layers::Dense(3, Activation::Softmax)});
    model.compile(kiln::optimizers::Adam(1e-2f), kiln::losses::SparseCategoricalCrossentropy());
    for (int step = 0; step < 4; ++step) model.train_on_batch(x, y);
    kiln::set_num_threads(0);
    return model.get_weights();
  };
  const std::vector<float> one = train(1);
  CHECK(train(2) == one);
  CHECK(train(3) == one);
}
