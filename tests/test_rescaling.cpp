// Tests of layers::Rescaling, the three every layer gets: a finite-difference gradient check, known
// values, and a save/load round trip through a model that starts with it (as kiln-images' does).
#include "kiln/layers/rescaling.hpp"

#include "kiln/error.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/model.hpp"
#include "kiln/random.hpp"
#include "temporary_directory.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using kiln::Shape;
using kiln::Tensor;
using kiln::layers::Rescaling;

Tensor random_tensor(const Shape& shape, uint32_t seed, float low, float high) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(low, high);
  Tensor t(shape);
  for (float& v : t.values()) v = uniform(engine);
  return t;
}

// L = sum(w * y) in double.
double weighted_sum(const Tensor& y, const Tensor& w) {
  double total = 0.0;
  for (int64_t i = 0; i < y.size(); ++i) total += static_cast<double>(w[i]) * y[i];
  return total;
}

}  // namespace

TEST_CASE("Rescaling: known values, y = x * scale + offset, any shape") {
  Rescaling to_unit(1.0f / 255.0f);
  CHECK(to_unit.build(Shape{2, 2, 1}) == Shape{2, 2, 1});
  CHECK(to_unit.parameters().empty());
  const Tensor pixels(Shape{1, 2, 2, 1}, {0.0f, 51.0f, 127.5f, 255.0f});
  const Tensor& unit = to_unit.forward(pixels, false);
  CHECK(unit.shape() == Shape{1, 2, 2, 1});
  CHECK(unit[0] == 0.0f);
  CHECK(unit[1] == doctest::Approx(0.2));
  CHECK(unit[2] == doctest::Approx(0.5));
  CHECK(unit[3] == doctest::Approx(1.0));

  Rescaling symmetric(1.0f / 127.5f, -1.0f);  // 0-255 -> [-1, 1]
  symmetric.build(Shape{4});
  const Tensor& centred = symmetric.forward(Tensor(Shape{1, 4}, {0.0f, 127.5f, 255.0f, 63.75f}), true);
  CHECK(centred[0] == doctest::Approx(-1.0));
  CHECK(centred[1] == doctest::Approx(0.0));
  CHECK(centred[2] == doctest::Approx(1.0));
  CHECK(centred[3] == doctest::Approx(-0.5));
  CHECK(symmetric.scale() == 1.0f / 127.5f);
  CHECK(symmetric.offset() == -1.0f);
  CHECK(symmetric.type_name() == "Rescaling");
}

TEST_CASE("Rescaling: the input gradient is dy * scale and matches finite differences") {
  Rescaling layer(0.25f, 3.0f);
  layer.build(Shape{3, 2});
  Tensor x = random_tensor(Shape{2, 3, 2}, 1, -2.0f, 2.0f);
  const Tensor w = random_tensor(Shape{2, 3, 2}, 2, -1.0f, 1.0f);
  layer.forward(x, true);
  const Tensor dx = layer.backward(w);
  REQUIRE(dx.shape() == x.shape());
  constexpr float eps = 1e-2f;
  for (int64_t i = 0; i < x.size(); ++i) {
    CHECK(dx[i] == doctest::Approx(w[i] * 0.25f));
    const float saved = x[i];
    x[i] = saved + eps;
    const double up = weighted_sum(layer.forward(x, true), w);
    x[i] = saved - eps;
    const double down = weighted_sum(layer.forward(x, true), w);
    x[i] = saved;
    CHECK(dx[i] == doctest::Approx((up - down) / (2.0 * eps)).epsilon(1e-2).scale(1e-3));
  }
}

TEST_CASE("Rescaling: a declared input shape is checked") {
  Rescaling layer(1.0f, 0.0f, Shape{28, 28, 1});
  layer.set_name("rescaling");
  REQUIRE(layer.declared_input_shape().has_value());
  CHECK_THROWS_AS(layer.build(Shape{32, 32, 3}), kiln::ShapeError);
  CHECK(layer.build(Shape{28, 28, 1}) == Shape{28, 28, 1});
}

TEST_CASE("Rescaling: save/load round trip of a model that starts with it; summary shows it") {
  const kiln::testing::TemporaryDirectory folder;
  const std::string path = folder.file("model.weights.npz");
  auto make_model = [](uint64_t seed) {
    kiln::set_random_seed(seed);
    return kiln::Sequential({
        Rescaling(1.0f / 255.0f, 0.0f, Shape{4, 3, 1}),
        kiln::layers::Flatten(),
        kiln::layers::Dense(5, kiln::Activation::ReLU),
        kiln::layers::Dense(3, kiln::Activation::Softmax),
    });
  };
  kiln::Sequential saved = make_model(1);
  REQUIRE(saved.built());
  std::ostringstream summary;
  saved.summary(summary);
  CHECK(summary.str().find("rescaling (Rescaling)") != std::string::npos);
  saved.save_weights(path);
  const std::vector<kiln::io::NamedArray> arrays = kiln::io::read_npz(path);
  REQUIRE(arrays.size() == 4);  // Rescaling has no weights: only the two Dense layers'
  CHECK(arrays[0].name == "dense/kernel");
  CHECK(arrays[0].shape == Shape{12, 5});

  kiln::Sequential loaded = make_model(2);
  CHECK(loaded.get_weights() != saved.get_weights());
  loaded.load_weights(path);
  CHECK(loaded.get_weights() == saved.get_weights());
  const Tensor x = random_tensor(Shape{6, 4, 3, 1}, 3, 0.0f, 255.0f);
  const Tensor expected = saved.predict(x);
  const Tensor actual = loaded.predict(x);
  CHECK(std::vector<float>(actual.values().begin(), actual.values().end()) ==
        std::vector<float>(expected.values().begin(), expected.values().end()));
}
