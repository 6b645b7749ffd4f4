// Tests of every loss: SparseCategoricalCrossentropy, CategoricalCrossentropy and
// BinaryCrossentropy (each with and without from_logits) and MeanSquaredError.
//
// For each: the value on a tiny batch, worked out by hand (or in double precision here, from the
// Keras definition); the plain gradient against finite differences of compute(); the fused
// gradient (w.r.t. the output activation's input) against finite differences taken through the
// activation; and check_targets' errors. Keras facts relied on: probabilities are clipped to
// [1e-7, 1 - 1e-7] before a log; categorical cross-entropy first rescales each row of predictions
// to sum to 1; from_logits losses are computed from the logits, unclipped.
#include "kiln/losses.hpp"

#include "kiln/activations.hpp"
#include "kiln/error.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "gradient_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::testing::error_message;
using kiln::testing::contains;

using kiln::Activation;
using kiln::GradientWith;
using kiln::Shape;
using kiln::ShapeError;
using kiln::Tensor;
using kiln::ValueError;
using kiln::losses::BinaryCrossentropy;
using kiln::losses::CategoricalCrossentropy;
using kiln::losses::MeanSquaredError;
using kiln::losses::SparseCategoricalCrossentropy;

using kiln::testing::TestRandom;

// Softmax of each row and the logistic sigmoid, in double, rounded to float at the end.
Tensor softmax_rows(const Tensor& logits) {
  Tensor p(logits.shape());
  for (int64_t r = 0; r < logits.rows(); ++r) {
    double row_max = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < logits.row_size(); ++j) row_max = std::max(row_max, double{logits.at(r, j)});
    for (int64_t j = 0; j < logits.row_size(); ++j) sum += std::exp(double{logits.at(r, j)} - row_max);
    for (int64_t j = 0; j < logits.row_size(); ++j) {
      p.at(r, j) = static_cast<float>(std::exp(double{logits.at(r, j)} - row_max) / sum);
    }
  }
  return p;
}

Tensor sigmoid_of(const Tensor& logits) {
  Tensor p(logits.shape());
  for (int64_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(1.0 / (1.0 + std::exp(-double{logits[i]})));
  return p;
}

// log(softmax(z)[index]) in double.
double log_softmax(const std::vector<double>& z, size_t index) {
  double sum = 0.0;
  for (double v : z) sum += std::exp(v);
  return z[index] - std::log(sum);
}

// Central differences of f with respect to each element of `at`, dividing by the step float
// rounding actually took.
std::vector<double> numeric_gradient(Tensor at, const std::function<double(const Tensor&)>& f, float eps) {
  std::vector<double> gradient(static_cast<size_t>(at.size()));
  for (int64_t i = 0; i < at.size(); ++i) {
    const float saved = at[i];
    const float plus = saved + eps, minus = saved - eps;
    at[i] = plus;
    const double up = f(at);
    at[i] = minus;
    const double down = f(at);
    at[i] = saved;
    gradient[static_cast<size_t>(i)] = (up - down) / (static_cast<double>(plus) - static_cast<double>(minus));
  }
  return gradient;
}

void check_close(const Tensor& analytic, const std::vector<double>& numeric) {
  REQUIRE(analytic.size() == static_cast<int64_t>(numeric.size()));
  double largest = 0.0;
  for (int64_t i = 0; i < analytic.size(); ++i) {
    const double a = analytic[i], n = numeric[static_cast<size_t>(i)];
    largest = std::max(largest, std::abs(n));
    CHECK_MESSAGE(std::abs(a - n) <= 1e-4 + 1e-2 * std::max(std::abs(a), std::abs(n)),
                  "element " << i << ": analytic " << a << ", numeric " << n);
  }
  CHECK(largest > 1e-2);  // a gradient that is zero everywhere would make the check vacuous
}

// The gradient w.r.t. the predictions (GradientWith::Predictions) against finite differences of compute() itself.
void check_plain_gradient(kiln::Loss& loss, const Tensor& y_pred, const Tensor& y_true, float eps) {
  Tensor gradient;
  loss.compute(y_pred, y_true, &gradient, GradientWith::Predictions);
  CHECK(gradient.shape() == y_pred.shape());
  check_close(gradient, numeric_gradient(
                            y_pred, [&](const Tensor& p) { return loss.compute(p, y_true, nullptr, GradientWith::Predictions); }, eps));
}

// The fused gradient: compute(activation(z), y, &g, GradientWith::PreActivation) gives dL/dz; compare it with
// finite differences of L(activation(z)) with respect to z.
void check_fused_gradient(kiln::Loss& loss, const Tensor& logits, const Tensor& y_true,
                          const std::function<Tensor(const Tensor&)>& activation, float eps) {
  Tensor gradient;
  loss.compute(activation(logits), y_true, &gradient, GradientWith::PreActivation);
  CHECK(gradient.shape() == logits.shape());
  check_close(gradient,
              numeric_gradient(
                  logits, [&](const Tensor& z) { return loss.compute(activation(z), y_true, nullptr, GradientWith::Predictions); }, eps));
}



}  // namespace

// ---- SparseCategoricalCrossentropy --------------------------------------------------------------

TEST_CASE("SparseCategoricalCrossentropy: value is the mean of -log p[label]") {
  SparseCategoricalCrossentropy loss;
  CHECK(loss.name() == "sparse_categorical_crossentropy");
  const Tensor p(Shape{2, 3}, {0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f});
  // labels 1 and 2: (-log 0.5 - log 0.8) / 2
  const double expected = (-std::log(0.5) - std::log(0.8)) / 2.0;
  CHECK(loss.compute(p, Tensor(Shape{2}, {1, 2}), nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  // Labels shaped [batch, 1] mean the same.
  CHECK(loss.compute(p, Tensor(Shape{2, 1}, {1, 2}), nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  // labels 0 and 0: (-log 0.2 - log 0.1) / 2
  CHECK(loss.compute(p, Tensor(Shape{2}, {0, 0}), nullptr, GradientWith::Predictions) ==
        doctest::Approx((-std::log(0.2) - std::log(0.1)) / 2.0).epsilon(1e-6));
}

TEST_CASE("SparseCategoricalCrossentropy: probabilities are clipped to [1e-7, 1 - 1e-7]") {
  SparseCategoricalCrossentropy loss;
  const Tensor p(Shape{1, 2}, {0.0f, 1.0f});
  // p[label] = 0 costs -log(1e-7) ~ 16.12, not infinity.
  CHECK(loss.compute(p, Tensor(Shape{1}, 0), nullptr, GradientWith::Predictions) == doctest::Approx(-std::log(1e-7)).epsilon(1e-6));
  // p[label] = 1 costs -log(1 - 1e-7) ~ 1e-7 (float32's 1 - 1e-7 is 1 - 1.19e-7), not exactly 0.
  const double almost_nothing = loss.compute(p, Tensor(Shape{1}, 1), nullptr, GradientWith::Predictions);
  CHECK(almost_nothing > 0.5e-7);
  CHECK(almost_nothing < 2e-7);
  // The clipped log has zero slope: no division by a zero probability.
  Tensor gradient;
  loss.compute(p, Tensor(Shape{1}, 0), &gradient, GradientWith::Predictions);
  CHECK(gradient[0] == 0.0f);
  CHECK(gradient[1] == 0.0f);
}

TEST_CASE("SparseCategoricalCrossentropy: the mean of -log p over batches of 31 to 100 rows, and all at the clip") {
  // compute() takes one log per group of 32 rows' product; the value must still be the mean of
  // every row's own -log p, whatever the batch's length, and also when every p sits at the clip.
  SparseCategoricalCrossentropy loss;
  TestRandom random(21);
  for (const int64_t rows : {31, 32, 33, 64, 100}) {
    CAPTURE(rows);
    Tensor p = random.tensor(Shape{rows, 4}, 0.0f, 1.0f);
    Tensor labels(Shape{rows});
    double sum_of_logs = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      labels[r] = static_cast<float>(r % 4);
      sum_of_logs += std::log(static_cast<double>(std::clamp(p.at(r, r % 4), 1e-7f, 1.0f - 1e-7f)));
    }
    CHECK(loss.compute(p, labels, nullptr, GradientWith::Predictions) == doctest::Approx(-sum_of_logs / static_cast<double>(rows)).epsilon(1e-12));
    for (float& value : p.values()) value = 0.0f;  // every row clipped to 1e-7: no underflow to 0
    CHECK(loss.compute(p, labels, nullptr, GradientWith::Predictions) == doctest::Approx(-std::log(static_cast<double>(1e-7f))).epsilon(1e-12));
  }
}

TEST_CASE("SparseCategoricalCrossentropy from_logits: value is mean(logsumexp(z) - z[label]), unclipped") {
  SparseCategoricalCrossentropy loss(/*from_logits=*/true);
  const Tensor z(Shape{2, 3}, {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f});
  const double expected = -(log_softmax({1.0, 2.0, 0.5}, 0) + log_softmax({-1.0, 0.0, 3.0}, 2)) / 2.0;
  CHECK(loss.compute(z, Tensor(Shape{2}, {0, 2}), nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  // Far past float's exp range: softmax would give p = 0 (clipped to 16.12); the logits give 1000.
  const Tensor extreme(Shape{1, 3}, {1000.0f, 0.0f, 0.0f});
  CHECK(loss.compute(extreme, Tensor(Shape{1}, 1), nullptr, GradientWith::Predictions) == doctest::Approx(1000.0).epsilon(1e-6));
}

TEST_CASE("SparseCategoricalCrossentropy: gradients match finite differences") {
  TestRandom random(1);
  const Tensor labels(Shape{4}, {0, 2, 1, 2});
  const Tensor logits = random.tensor(Shape{4, 3}, -2.0f, 2.0f);
  SUBCASE("plain, w.r.t. probabilities") {
    SparseCategoricalCrossentropy loss;
    check_plain_gradient(loss, softmax_rows(logits), labels, 1e-3f);
  }
  SUBCASE("fused with softmax, w.r.t. logits") {
    SparseCategoricalCrossentropy loss;
    CHECK(loss.fuses_with(Activation::Softmax));
    CHECK_FALSE(loss.fuses_with(Activation::Sigmoid));
    CHECK_FALSE(loss.fuses_with(Activation::Linear));
    check_fused_gradient(loss, logits, labels, softmax_rows, 1e-2f);
  }
  SUBCASE("from_logits, w.r.t. logits") {
    SparseCategoricalCrossentropy loss(true);
    CHECK_FALSE(loss.fuses_with(Activation::Softmax));  // the logits are already the pre-activation
    check_plain_gradient(loss, logits, labels, 1e-2f);
  }
}

TEST_CASE("SparseCategoricalCrossentropy: check_targets") {
  SparseCategoricalCrossentropy loss;
  const Tensor p(Shape{2, 3}, 1.0f / 3.0f);
  CHECK_NOTHROW(loss.check_targets(p.shape(), Tensor(Shape{2}, {0, 2})));
  CHECK_NOTHROW(loss.check_targets(p.shape(), Tensor(Shape{2, 1}, {1, 2})));

  const std::string out_of_range =
      error_message<ValueError>([&] { loss.check_targets(p.shape(), Tensor(Shape{2}, {0, 3})); });
  CHECK(contains(out_of_range, "label 3"));
  CHECK(contains(out_of_range, "3 outputs"));
  CHECK_THROWS_AS(loss.check_targets(p.shape(), Tensor(Shape{2}, {-1, 0})), ValueError);
  CHECK_THROWS_AS(loss.check_targets(p.shape(), Tensor(Shape{2}, {0.5f, 0})), ValueError);
  CHECK_THROWS_AS(loss.check_targets(p.shape(), Tensor(Shape{2}, {std::numeric_limits<float>::quiet_NaN(), 0})), ValueError);

  const std::string rows = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{5}, {0, 1, 2, 0, 1})); });
  CHECK(contains(rows, "2x3"));
  CHECK(contains(rows, "5"));
  // One-hot targets belong to categorical_crossentropy.
  const std::string one_hot = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{2, 3})); });
  CHECK(contains(one_hot, "2x3"));
  CHECK(contains(one_hot, "categorical_crossentropy"));
}

// ---- CategoricalCrossentropy --------------------------------------------------------------------

TEST_CASE("CategoricalCrossentropy: value is the mean of -sum y log p") {
  CategoricalCrossentropy loss;
  CHECK(loss.name() == "categorical_crossentropy");
  const Tensor p(Shape{2, 3}, {0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f});
  const Tensor one_hot(Shape{2, 3}, {0, 1, 0, 0, 0, 1});
  CHECK(loss.compute(p, one_hot, nullptr, GradientWith::Predictions) ==
        doctest::Approx((-std::log(0.5) - std::log(0.8)) / 2.0).epsilon(1e-6));
  // Soft targets: -(0.2 log 0.2 + 0.3 log 0.5 + 0.5 log 0.3), one row.
  const Tensor soft(Shape{1, 3}, {0.2f, 0.3f, 0.5f});
  const Tensor first_row(Shape{1, 3}, {0.2f, 0.5f, 0.3f});
  CHECK(loss.compute(first_row, soft, nullptr, GradientWith::Predictions) ==
        doctest::Approx(-(0.2 * std::log(0.2) + 0.3 * std::log(0.5) + 0.5 * std::log(0.3))).epsilon(1e-6));
}

TEST_CASE("CategoricalCrossentropy: predictions are rescaled to sum to 1, then clipped") {
  CategoricalCrossentropy loss;
  // (1, 2, 1) rescales to (0.25, 0.5, 0.25): -log 0.5.
  CHECK(loss.compute(Tensor(Shape{1, 3}, {1, 2, 1}), Tensor(Shape{1, 3}, {0, 1, 0}), nullptr, GradientWith::Predictions) ==
        doctest::Approx(-std::log(0.5)).epsilon(1e-6));
  // A zero probability on the target costs -log(1e-7), not infinity.
  CHECK(loss.compute(Tensor(Shape{1, 2}, {0, 1}), Tensor(Shape{1, 2}, {1, 0}), nullptr, GradientWith::Predictions) ==
        doctest::Approx(-std::log(1e-7)).epsilon(1e-6));
}

TEST_CASE("CategoricalCrossentropy from_logits: value is -sum y log softmax(z)") {
  CategoricalCrossentropy loss(true);
  const Tensor z(Shape{2, 3}, {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f});
  const Tensor y(Shape{2, 3}, {0.0f, 1.0f, 0.0f, 0.5f, 0.0f, 0.5f});
  const double expected = -(log_softmax({1.0, 2.0, 0.5}, 1) +
                            0.5 * log_softmax({-1.0, 0.0, 3.0}, 0) + 0.5 * log_softmax({-1.0, 0.0, 3.0}, 2)) /
                          2.0;
  CHECK(loss.compute(z, y, nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  const Tensor extreme(Shape{1, 2}, {0.0f, 1000.0f});
  CHECK(loss.compute(extreme, Tensor(Shape{1, 2}, {1, 0}), nullptr, GradientWith::Predictions) == doctest::Approx(1000.0).epsilon(1e-6));
}

TEST_CASE("CategoricalCrossentropy: gradients match finite differences") {
  TestRandom random(2);
  const Tensor one_hot(Shape{3, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  const Tensor soft(Shape{3, 4}, {0.1f, 0.2f, 0.3f, 0.4f, 0.7f, 0.1f, 0.1f, 0.1f, 0.0f, 0.5f, 0.0f, 0.5f});
  // Targets need not sum to 1 (label smoothing gone wrong, multi-label data): Keras's loss is still
  // -sum y log p, and its gradient w.r.t. the logits is p sum(y) - y.
  const Tensor unnormalised(Shape{3, 4}, {0.5f, 0.5f, 0.5f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0.2f, 0.0f, 0.0f, 0.1f});
  const Tensor logits = random.tensor(Shape{3, 4}, -2.0f, 2.0f);
  for (const Tensor* targets : {&one_hot, &soft, &unnormalised}) {
    CAPTURE(targets == &one_hot ? "one-hot" : targets == &soft ? "soft" : "unnormalised");
    // Plain, w.r.t. predictions that do not sum to 1 (the rescaling is part of the loss).
    CategoricalCrossentropy plain;
    check_plain_gradient(plain, random.tensor(Shape{3, 4}, 0.2f, 1.0f), *targets, 1e-3f);
    // Fused with softmax, w.r.t. logits.
    CategoricalCrossentropy fused;
    CHECK(fused.fuses_with(Activation::Softmax));
    CHECK_FALSE(fused.fuses_with(Activation::Sigmoid));
    check_fused_gradient(fused, logits, *targets, softmax_rows, 1e-2f);
    // From logits, w.r.t. logits.
    CategoricalCrossentropy from_logits(true);
    CHECK_FALSE(from_logits.fuses_with(Activation::Softmax));
    check_plain_gradient(from_logits, logits, *targets, 1e-2f);
  }
}

TEST_CASE("CategoricalCrossentropy: check_targets wants targets shaped like the predictions") {
  CategoricalCrossentropy loss;
  const Tensor p(Shape{2, 10}, 0.1f);
  CHECK_NOTHROW(loss.check_targets(p.shape(), Tensor(Shape{2, 10})));
  const std::string classes = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{2, 7})); });
  CHECK(contains(classes, "10"));
  CHECK(contains(classes, "7"));
  const std::string rows = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{3, 10})); });
  CHECK(contains(rows, "2x10"));
  CHECK(contains(rows, "3x10"));
  // Class indices are sparse targets: an error, not a silent misreading.
  CHECK_THROWS_AS(loss.check_targets(p.shape(), Tensor(Shape{2}, {1, 2})), ShapeError);
}

// ---- BinaryCrossentropy -------------------------------------------------------------------------

TEST_CASE("BinaryCrossentropy: value is the mean over every element of -(y log p + (1 - y) log(1 - p))") {
  BinaryCrossentropy loss;
  CHECK(loss.name() == "binary_crossentropy");
  const Tensor p(Shape{2, 2}, {0.9f, 0.2f, 0.6f, 0.4f});
  const Tensor y(Shape{2, 2}, {1, 0, 0, 1});
  // -(log 0.9 + log 0.8 + log 0.4 + log 0.4) / 4
  const double expected = -(std::log(0.9) + std::log(0.8) + std::log(0.4) + std::log(0.4)) / 4.0;
  CHECK(loss.compute(p, y, nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  // Soft target 0.3 on p = 0.5: -(0.3 log 0.5 + 0.7 log 0.5) = log 2.
  CHECK(loss.compute(Tensor(Shape{1, 1}, 0.5f), Tensor(Shape{1, 1}, 0.3f), nullptr, GradientWith::Predictions) ==
        doctest::Approx(std::log(2.0)).epsilon(1e-6));
  // Clipped: p = 0 with y = 1 costs -log(1e-7).
  CHECK(loss.compute(Tensor(Shape{1, 1}, 0.0f), Tensor(Shape{1, 1}, 1.0f), nullptr, GradientWith::Predictions) ==
        doctest::Approx(-std::log(1e-7)).epsilon(1e-6));
}

TEST_CASE("BinaryCrossentropy from_logits: value from the logits, stable for large |z|") {
  BinaryCrossentropy loss(true);
  const Tensor z(Shape{2, 2}, {2.0f, -1.0f, 0.5f, 0.0f});
  const Tensor y(Shape{2, 2}, {1, 0, 0, 1});
  // y = 1: -log sigmoid(z) = log(1 + e^-z);  y = 0: -log(1 - sigmoid(z)) = log(1 + e^z)
  const double expected = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0)) + std::log1p(std::exp(0.5)) +
                           std::log(2.0)) /
                          4.0;
  CHECK(loss.compute(z, y, nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));
  // z = 100 with y = 0 costs 100 (clipping a sigmoid would give 15.9); z = -100 with y = 0 costs ~0.
  CHECK(loss.compute(Tensor(Shape{1, 1}, 100.0f), Tensor(Shape{1, 1}, 0.0f), nullptr, GradientWith::Predictions) ==
        doctest::Approx(100.0).epsilon(1e-6));
  CHECK(loss.compute(Tensor(Shape{1, 1}, -100.0f), Tensor(Shape{1, 1}, 0.0f), nullptr, GradientWith::Predictions) < 1e-40);
}

TEST_CASE("BinaryCrossentropy: gradients match finite differences") {
  TestRandom random(3);
  const Tensor y(Shape{3, 2}, {1.0f, 0.0f, 0.0f, 1.0f, 0.3f, 0.8f});
  const Tensor logits = random.tensor(Shape{3, 2}, -3.0f, 3.0f);
  SUBCASE("plain, w.r.t. probabilities") {
    BinaryCrossentropy loss;
    check_plain_gradient(loss, random.tensor(Shape{3, 2}, 0.1f, 0.9f), y, 1e-3f);
  }
  SUBCASE("fused with sigmoid, w.r.t. logits") {
    BinaryCrossentropy loss;
    CHECK(loss.fuses_with(Activation::Sigmoid));
    CHECK_FALSE(loss.fuses_with(Activation::Softmax));
    check_fused_gradient(loss, logits, y, sigmoid_of, 1e-2f);
  }
  SUBCASE("from_logits, w.r.t. logits") {
    BinaryCrossentropy loss(true);
    CHECK_FALSE(loss.fuses_with(Activation::Sigmoid));
    check_plain_gradient(loss, logits, y, 1e-2f);
  }
}

TEST_CASE("BinaryCrossentropy: check_targets") {
  BinaryCrossentropy loss;
  const Tensor p(Shape{4, 1}, 0.5f);
  CHECK_NOTHROW(loss.check_targets(p.shape(), Tensor(Shape{4}, {0, 1, 1, 0})));  // [batch] goes with [batch, 1]
  CHECK_NOTHROW(loss.check_targets(p.shape(), Tensor(Shape{4, 1})));
  const std::string rows = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{3, 1})); });
  CHECK(contains(rows, "4x1"));
  CHECK(contains(rows, "3x1"));
  CHECK_THROWS_AS(loss.check_targets(p.shape(), Tensor(Shape{4, 2})), ShapeError);
}

// ---- MeanSquaredError ---------------------------------------------------------------------------

TEST_CASE("MeanSquaredError: value, gradient, and check_targets") {
  MeanSquaredError loss;
  CHECK(loss.name() == "mean_squared_error");
  // differences 1, 0, -2, 3: (1 + 0 + 4 + 9) / 4 = 3.5
  const Tensor p(Shape{2, 2}, {1, 2, 3, 4});
  const Tensor y(Shape{2, 2}, {0, 2, 5, 1});
  CHECK(loss.compute(p, y, nullptr, GradientWith::Predictions) == doctest::Approx(3.5).epsilon(1e-12));
  // dL/dp = 2 (p - y) / 4 = (0.5, 0, -1, 1.5)
  Tensor gradient;
  loss.compute(p, y, &gradient, GradientWith::Predictions);
  CHECK(gradient.shape() == p.shape());
  CHECK(std::vector<float>(gradient.values().begin(), gradient.values().end()) ==
        std::vector<float>{0.5f, 0.0f, -1.0f, 1.5f});
  for (Activation a : {Activation::Linear, Activation::ReLU, Activation::Sigmoid, Activation::Tanh, Activation::Softmax}) {
    CHECK_FALSE(loss.fuses_with(a));
  }

  TestRandom random(4);
  check_plain_gradient(loss, random.tensor(Shape{3, 4}, -2.0f, 2.0f), random.tensor(Shape{3, 4}, -2.0f, 2.0f), 1e-2f);

  const std::string mismatch =
      error_message<ShapeError>([&] { loss.check_targets(Shape{2, 10}, Tensor(Shape{2, 7})); });
  CHECK(contains(mismatch, "10"));
  CHECK(contains(mismatch, "7"));
  const std::string rows = error_message<ShapeError>([&] { loss.check_targets(p.shape(), Tensor(Shape{5, 2})); });
  CHECK(contains(rows, "2x2"));
  CHECK(contains(rows, "5x2"));
}

// ---- sample weights -----------------------------------------------------------------------------
// Keras's "sum over batch size": sum_r w_r loss_r / n. Each loss is checked against its own
// one-row values (loss_r is compute() on row r alone), its plain and fused gradients against
// finite differences of the weighted value, and weights of 1 against the unweighted call.

namespace {

Tensor row_alone(const Tensor& t, int64_t r) {
  Shape shape = t.shape();
  shape[0] = 1;
  Tensor row(shape);
  std::copy(t.data() + r * t.row_size(), t.data() + (r + 1) * t.row_size(), row.data());
  return row;
}

// With an activation, `input` holds logits: the value and the plain gradient are checked on
// activation(input), the fused gradient through it.
void check_weighted(kiln::Loss& loss, const Tensor& input, const Tensor& y_true, const std::vector<float>& weights,
                    const std::function<Tensor(const Tensor&)>& activation, float eps) {
  const Tensor y_pred = activation ? activation(input) : input;
  const int64_t n = y_pred.rows();
  double expected = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    expected += weights[static_cast<size_t>(r)] * loss.compute(row_alone(y_pred, r), row_alone(y_true, r), nullptr, GradientWith::Predictions);
  }
  expected /= static_cast<double>(n);
  CHECK(loss.compute_weighted(y_pred, y_true, weights, nullptr, GradientWith::Predictions) == doctest::Approx(expected).epsilon(1e-6));

  const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  CHECK(loss.compute_weighted(y_pred, y_true, ones, nullptr, GradientWith::Predictions) ==
        doctest::Approx(loss.compute(y_pred, y_true, nullptr, GradientWith::Predictions)).epsilon(1e-12));

  Tensor gradient;
  loss.compute_weighted(y_pred, y_true, weights, &gradient, GradientWith::Predictions);
  check_close(gradient, numeric_gradient(
                            y_pred, [&](const Tensor& p) { return loss.compute_weighted(p, y_true, weights, nullptr, GradientWith::Predictions); }, eps));
  if (!activation) return;
  loss.compute_weighted(y_pred, y_true, weights, &gradient, GradientWith::PreActivation);
  check_close(gradient, numeric_gradient(
                            input, [&](const Tensor& z) { return loss.compute_weighted(activation(z), y_true, weights, nullptr, GradientWith::Predictions); },
                            eps));
}

}  // namespace

TEST_CASE("every loss weighs sample r by w_r and divides by the batch's size, as Keras's sum over batch size") {
  TestRandom random(11);
  const std::vector<float> weights{2.0f, 0.0f, 0.5f, 1.0f};
  SUBCASE("sparse categorical") {
    SparseCategoricalCrossentropy loss;
    const Tensor labels(Shape{4}, {2, 0, 1, 2});
    check_weighted(loss, softmax_rows(random.tensor(Shape{4, 3}, -2.0f, 2.0f)), labels, weights, {}, 1e-3f);
    const Tensor logits = random.tensor(Shape{4, 3}, -2.0f, 2.0f);
    check_weighted(loss, logits, labels, weights, softmax_rows, 1e-2f);
    SparseCategoricalCrossentropy from_logits(/*from_logits=*/true);
    check_weighted(from_logits, logits, labels, weights, {}, 1e-2f);
  }
  SUBCASE("categorical") {
    CategoricalCrossentropy loss;
    const Tensor one_hot(Shape{4, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0, 0.5f, 0, 0.5f});
    check_weighted(loss, softmax_rows(random.tensor(Shape{4, 3}, -2.0f, 2.0f)), one_hot, weights, {}, 1e-3f);
    check_weighted(loss, random.tensor(Shape{4, 3}, -2.0f, 2.0f), one_hot, weights, softmax_rows, 1e-2f);
  }
  SUBCASE("binary, two outputs per sample") {
    BinaryCrossentropy loss;
    const Tensor targets(Shape{4, 2}, {0, 1, 1, 1, 0, 0, 1, 0});
    check_weighted(loss, sigmoid_of(random.tensor(Shape{4, 2}, -2.0f, 2.0f)), targets, weights, {}, 1e-3f);
    check_weighted(loss, random.tensor(Shape{4, 2}, -2.0f, 2.0f), targets, weights, sigmoid_of, 1e-2f);
    BinaryCrossentropy from_logits(/*from_logits=*/true);
    check_weighted(from_logits, random.tensor(Shape{4, 2}, -2.0f, 2.0f), targets, weights, {}, 1e-2f);
  }
  SUBCASE("mean squared error") {
    MeanSquaredError loss;
    check_weighted(loss, random.tensor(Shape{4, 2}, -2.0f, 2.0f), random.tensor(Shape{4, 2}, -2.0f, 2.0f), weights, {}, 1e-2f);
  }
}

TEST_CASE("a sample of weight 0 adds nothing to the loss and gets a zero gradient row") {
  SparseCategoricalCrossentropy loss;
  const Tensor p(Shape{2, 2}, {0.3f, 0.7f, 0.9f, 0.1f});
  const std::vector<float> weights{1.0f, 0.0f};
  // (-log 0.7 + 0 * anything) / 2, whatever sample 1's label is
  const double expected = -std::log(0.7) / 2.0;
  Tensor gradient;
  for (float other_label : {0.0f, 1.0f}) {
    CHECK(loss.compute_weighted(p, Tensor(Shape{2}, {1, other_label}), weights, &gradient, GradientWith::PreActivation) ==
          doctest::Approx(expected).epsilon(1e-6));
    CHECK(gradient.at(1, 0) == 0.0f);
    CHECK(gradient.at(1, 1) == 0.0f);
    CHECK(gradient.at(0, 1) == doctest::Approx((0.7 - 1.0) / 2.0).epsilon(1e-6));
  }
}
