// Sample weights and class weights (FitOptions::sample_weight and class_weight, a dataset's
// (x, y, sample_weight) batches): Keras's meaning, checked through what training does with them.
// A weight scales a sample's share of the loss (sum_r w_r loss_r / n) and of the metrics
// (sum_r w_r value_r / sum_r w_r); class_weight gives every sample its class's weight.
#include <doctest/doctest.h>

#include "error_message.hpp"
#include "temporary_directory.hpp"

#include <kiln/kiln.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace kiln;
using kiln::testing::contains;
using kiln::testing::error_message;

namespace {

// 40 samples of 3 features in 3 classes, class = where the largest feature is.
LabeledData three_classes() {
  constexpr int64_t kSamples = 40;
  Tensor x(Shape{kSamples, 3}), y(Shape{kSamples});
  Rng rng(5);
  for (int64_t i = 0; i < kSamples; ++i) {
    for (int64_t f = 0; f < 3; ++f) x.at(i, f) = rng.uniform(-1.0f, 1.0f);
    int64_t best = 0;
    for (int64_t f = 1; f < 3; ++f) best = x.at(i, f) > x.at(i, best) ? f : best;
    y[i] = static_cast<float>(best);
  }
  return {std::move(x), std::move(y), {}};
}

Sequential fresh_model(Shared<Optimizer> optimizer = optimizers::Adam(0.01f)) {
  set_random_seed(3);
  Sequential model({layers::Dense(8, Activation::ReLU, /*input_dim=*/3), layers::Dense(3, Activation::Softmax)});
  model.compile(std::move(optimizer), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  return model;
}

std::vector<float> weights_of(const Sequential& model) { return model.get_weights(); }

// The weights of a fresh model after fit(x, y, options). Each model is made just before its fit,
// so fit's shuffle draws the same seed in every call.
std::vector<float> trained(const Tensor& x, const Tensor& y, const FitOptions& options) {
  Sequential model = fresh_model();
  model.fit(x, y, options);
  return weights_of(model);
}

Tensor weights_by_class(const Tensor& y, const std::vector<float>& per_class) {
  Tensor w(Shape{y.rows()});
  for (int64_t r = 0; r < y.rows(); ++r) w[r] = per_class[static_cast<size_t>(y[r])];
  return w;
}

}  // namespace

TEST_CASE("Accuracy with sample weights is the weighted share of right answers") {
  metrics::Accuracy accuracy;
  // Rows 0 and 2 right (argmax 1 and 0), row 1 wrong.
  const Tensor p(Shape{3, 2}, {0.2f, 0.8f, 0.9f, 0.1f, 0.6f, 0.4f});
  const Tensor y(Shape{3}, {1, 1, 0});
  const std::vector<float> w{1.0f, 3.0f, 0.5f};
  accuracy.update_weighted(p, y, w);
  CHECK(accuracy.result() == doctest::Approx(1.5 / 4.5));
  accuracy.update(p, y);  // and three more, unweighted: (1.5 + 2) / (4.5 + 3)
  CHECK(accuracy.result() == doctest::Approx(3.5 / 7.5));
}

TEST_CASE("a sample of weight 0 has no say: changing its label changes nothing") {
  const LabeledData data = three_classes();
  Tensor w(Shape{data.x.rows()}, 1.0f);
  w[7] = 0.0f;
  Tensor other_labels = data.y;
  other_labels[7] = std::fmod(other_labels[7] + 1.0f, 3.0f);
  const std::vector<float> a = trained(data.x, data.y, {.batch_size = 8, .epochs = 3, .verbose = 0, .sample_weight = w});
  CHECK(a == trained(data.x, other_labels, {.batch_size = 8, .epochs = 3, .verbose = 0, .sample_weight = w}));
  // Without the zero weight, the changed label does change the result.
  CHECK(a != trained(data.x, other_labels, {.batch_size = 8, .epochs = 3, .verbose = 0}));
}

TEST_CASE("a weight of 2 is one step of SGD on the batch with that sample twice, the rate scaled for the batch size") {
  // sum_r w_r l_r / n with w = (2, 1, 1, 1) and n = 4, against the plain mean over the 5 rows
  // (sample 0 twice): the same direction, the second 4/5 as long, so SGD at 5/4 the rate there
  // takes the same step.
  const LabeledData data = three_classes();
  const LabeledData batch = data::gather_rows(data, std::vector<int64_t>{0, 1, 2, 3});
  const LabeledData doubled = data::gather_rows(data, std::vector<int64_t>{0, 0, 1, 2, 3});
  Sequential weighted = fresh_model(optimizers::SGD(0.4f)), repeated = fresh_model(optimizers::SGD(0.5f));
  const std::vector<float> before = weights_of(weighted);
  weighted.train_on_batch(batch.x, batch.y, Tensor(Shape{4}, {2, 1, 1, 1}));
  repeated.train_on_batch(doubled.x, doubled.y);
  const std::vector<float> after_weighted = weights_of(weighted), after_repeated = weights_of(repeated);
  double moved = 0.0;
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(after_weighted[i] == doctest::Approx(after_repeated[i]).epsilon(1e-5));
    moved = std::max(moved, std::abs(double{after_weighted[i]} - before[i]));
  }
  CHECK(moved > 1e-3);  // the step did something
}

TEST_CASE("class_weight gives each sample its class's weight, the same bits as those sample weights") {
  const LabeledData data = three_classes();
  const std::vector<float> by_class =
      trained(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 0, .class_weight = {{0, 3.0f}, {2, 0.5f}}});
  CHECK(by_class == trained(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 0,
                                             .sample_weight = weights_by_class(data.y, {3.0f, 1.0f, 0.5f})}));
  CHECK(by_class != trained(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 0}));

  SUBCASE("one-hot labels: the class is the row's largest entry") {
    Tensor one_hot(Shape{data.y.rows(), 3});
    for (int64_t r = 0; r < data.y.rows(); ++r) one_hot.at(r, static_cast<int64_t>(data.y[r])) = 1.0f;
    auto categorical = [&](const FitOptions& options) {
      Sequential model = fresh_model();
      model.compile(optimizers::Adam(0.01f), losses::CategoricalCrossentropy(), {metrics::Accuracy()});
      model.fit(data.x, one_hot, options);
      return weights_of(model);
    };
    CHECK(categorical({.batch_size = 8, .epochs = 2, .verbose = 0, .class_weight = {{1, 4.0f}}}) ==
          categorical({.batch_size = 8, .epochs = 2, .verbose = 0, .sample_weight = weights_by_class(data.y, {1.0f, 4.0f, 1.0f})}));
  }
  SUBCASE("on a dataset") {
    Sequential on_dataset = fresh_model();
    on_dataset.fit(data::from_tensor_slices(data.x, data.y).batch(8),
                   {.epochs = 2, .verbose = 0, .class_weight = {{0, 3.0f}, {2, 0.5f}}});
    Sequential on_arrays = fresh_model();
    on_arrays.fit(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 0, .shuffle = false, .class_weight = {{0, 3.0f}, {2, 0.5f}}});
    CHECK(weights_of(on_dataset) == weights_of(on_arrays));
  }
}

TEST_CASE("a dataset's (x, y, sample_weight) batches train as fit's sample_weight does, through batch, shuffle and cache") {
  const LabeledData data = three_classes();
  const Tensor w = weights_by_class(data.y, {0.25f, 2.0f, 1.0f});
  Sequential on_arrays = fresh_model();
  const History arrays_history =
      on_arrays.fit(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 0, .shuffle = false, .sample_weight = w});

  SUBCASE("batched") {
    Sequential on_dataset = fresh_model();
    const History history = on_dataset.fit(data::from_tensor_slices(data.x, data.y, w).batch(8), {.epochs = 2, .verbose = 0});
    CHECK(weights_of(on_dataset) == weights_of(on_arrays));
    CHECK(history.history.at("loss") == arrays_history.history.at("loss"));
    CHECK(history.history.at("accuracy") == arrays_history.history.at("accuracy"));
  }
  SUBCASE("unbatched, batched again, and read back from a file cache") {
    kiln::testing::TemporaryDirectory directory;
    const std::string cache = directory.file("weighted.cache");
    const auto pipeline = data::from_tensor_slices(data.x, data.y, w).batch(4).unbatch().batch(8).cache(cache);
    Sequential first = fresh_model(), second = fresh_model();
    first.fit(pipeline, {.epochs = 2, .verbose = 0});  // writes the cache in epoch 1, reads it in epoch 2
    second.fit(pipeline, {.epochs = 2, .verbose = 0});  // reads it throughout
    CHECK(weights_of(first) == weights_of(on_arrays));
    CHECK(weights_of(second) == weights_of(on_arrays));
  }
  SUBCASE("shuffled: each weight stays with its sample") {
    // Weights that zero out class 1 give the same model whatever class 1's labels say.
    const Tensor no_class_1 = weights_by_class(data.y, {1.0f, 0.0f, 1.0f});
    Tensor relabelled = data.y;
    for (int64_t r = 0; r < relabelled.rows(); ++r) {
      if (relabelled[r] == 1.0f) relabelled[r] = 2.0f;
    }
    Sequential a = fresh_model(), b = fresh_model();
    a.fit(data::from_tensor_slices(data.x, data.y, no_class_1).shuffle(40, 9).batch(8), {.epochs = 2, .verbose = 0});
    b.fit(data::from_tensor_slices(data.x, relabelled, no_class_1).shuffle(40, 9).batch(8), {.epochs = 2, .verbose = 0});
    CHECK(weights_of(a) == weights_of(b));
  }
}

TEST_CASE("evaluate weighs the loss and the metrics by sample_weight, on arrays and on a dataset") {
  const LabeledData data = three_classes();
  Sequential model = fresh_model();
  const Tensor& x = data.x;
  const Tensor prediction = model.predict(x);
  // By hand: sum w_r (-log p[r, y_r]) / n, and sum of w over the right rows / sum of w.
  const Tensor w = weights_by_class(data.y, {2.0f, 0.0f, 1.0f});
  double loss = 0.0, right = 0.0, total = 0.0;
  for (int64_t r = 0; r < x.rows(); ++r) {
    const auto label = static_cast<int64_t>(data.y[r]);
    loss -= w[r] * std::log(static_cast<double>(prediction.at(r, label)));
    int64_t best = 0;
    for (int64_t j = 1; j < 3; ++j) best = prediction.at(r, j) > prediction.at(r, best) ? j : best;
    right += best == label ? w[r] : 0.0f;
    total += w[r];
  }
  // One batch, so the running mean over batches is that batch's value.
  const Logs on_arrays = model.evaluate(x, data.y, {.batch_size = 40, .verbose = 0, .sample_weight = w});
  CHECK(on_arrays.at("loss") == doctest::Approx(loss / 40.0).epsilon(1e-5));
  CHECK(on_arrays.at("accuracy") == doctest::Approx(right / total));
  const Logs on_dataset = model.evaluate(data::from_tensor_slices(x, data.y, w).batch(40), {.verbose = 0});
  CHECK(on_dataset.at("loss") == on_arrays.at("loss"));
  CHECK(on_dataset.at("accuracy") == on_arrays.at("accuracy"));
  // validation_split keeps the last samples' weights for validation.
  Sequential split = fresh_model();
  const History history = split.fit(x, data.y, {.batch_size = 8, .epochs = 1, .verbose = 0, .validation_split = 0.25, .sample_weight = w});
  const Tensor last_x = data::gather_rows(x, std::vector<int64_t>{30, 31, 32, 33, 34, 35, 36, 37, 38, 39});
  const Tensor last_y = data::gather_rows(data.y, std::vector<int64_t>{30, 31, 32, 33, 34, 35, 36, 37, 38, 39});
  const Tensor last_w = data::gather_rows(w, std::vector<int64_t>{30, 31, 32, 33, 34, 35, 36, 37, 38, 39});
  CHECK(history.history.at("val_loss").back() ==
        split.evaluate(last_x, last_y, {.batch_size = 8, .verbose = 0, .sample_weight = last_w}).at("loss"));
}

TEST_CASE("weights that do not fit are clear errors naming what is wrong") {
  const LabeledData data = three_classes();
  Sequential model = fresh_model();
  const std::string shape = error_message<ShapeError>(
      [&] { model.fit(data.x, data.y, {.verbose = 0, .sample_weight = Tensor(Shape{39})}); });
  CHECK(contains(shape, "sample_weight"));
  CHECK(contains(shape, "[40]"));
  CHECK(contains(shape, "39"));
  CHECK_THROWS_AS(model.fit(data.x, data.y, {.verbose = 0, .sample_weight = Tensor(Shape{40, 2})}), ShapeError);
  CHECK_THROWS_AS(data::from_tensor_slices(data.x, data.y, Tensor(Shape{41})), ShapeError);
  CHECK_THROWS_AS(model.train_on_batch(data.x, data.y, Tensor(Shape{3})), ShapeError);

  const std::string both = error_message<ValueError>([&] {
    model.fit(data.x, data.y, {.verbose = 0, .sample_weight = Tensor(Shape{40}, 1.0f), .class_weight = {{0, 2.0f}}});
  });
  CHECK(contains(both, "class_weight"));
  CHECK(contains(both, "sample_weight"));
  const std::string weighted_dataset = error_message<ValueError>([&] {
    model.fit(data::from_tensor_slices(data.x, data.y, Tensor(Shape{40}, 1.0f)).batch(8), {.verbose = 0, .class_weight = {{0, 2.0f}}});
  });
  CHECK(contains(weighted_dataset, "class_weight"));
  const std::string dataset_argument = error_message<ValueError>([&] {
    model.fit(data::from_tensor_slices(data.x, data.y).batch(8), {.verbose = 0, .sample_weight = Tensor(Shape{40}, 1.0f)});
  });
  CHECK(contains(dataset_argument, "from_tensor_slices(x, y, sample_weight)"));
  CHECK_THROWS_AS(model.fit(data.x, data.y, {.verbose = 0, .class_weight = {{-1, 2.0f}}}), ValueError);
  CHECK_THROWS_AS(model.fit(data.x, data.y, {.verbose = 0, .class_weight = {{1, NAN}}}), ValueError);
}
