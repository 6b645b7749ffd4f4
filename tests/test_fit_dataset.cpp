// Sequential::fit, evaluate and predict on a Dataset (kiln/model.hpp): the same weights as
// training on arrays, bit for bit, whatever prefetch and parallel map do; validation on a
// Dataset; steps_per_epoch over repeat(); the "input_wait" share; errors from the pipeline
// leaving fit cleanly.
#include <doctest/doctest.h>

#include "stream_capture.hpp"

#include <kiln/kiln.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

using namespace kiln;
using namespace std::chrono_literals;

namespace {

using kiln::testing::StreamCapture;

// 96 samples of 4 features in 3 classes (the class is where the largest of the first three
// features is), so a small model has something to learn.
LabeledData three_classes(uint64_t seed) {
  constexpr int64_t kSamples = 96;
  Tensor x(Shape{kSamples, 4}), y(Shape{kSamples});
  Rng rng(seed);
  for (int64_t i = 0; i < kSamples; ++i) {
    for (int64_t f = 0; f < 4; ++f) x.at(i, f) = rng.uniform(-1.0f, 1.0f);
    int64_t best = 0;
    for (int64_t f = 1; f < 3; ++f) best = x.at(i, f) > x.at(i, best) ? f : best;
    y[i] = static_cast<float>(best);
  }
  return {std::move(x), std::move(y)};
}

// A fresh compiled model, its weights drawn from `seed`.
Sequential fresh_model(uint64_t seed) {
  set_random_seed(seed);
  Sequential model({layers::Dense(16, Activation::ReLU, /*input_dim=*/4), layers::Dropout(0.1f),
                    layers::Dense(3, Activation::Softmax)});
  model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  return model;
}


// Threads of this process right now (Linux).
int64_t thread_count() {
  int64_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++count;
  return count;
}

// Stands in for a slower model: every training step takes at least this long.
class SlowStep : public Callback {
 public:
  explicit SlowStep(std::chrono::microseconds duration) : duration_(duration) {}
  void on_train_batch_end(int64_t, const Logs&) override { std::this_thread::sleep_for(duration_); }

 private:
  std::chrono::microseconds duration_;
};

}  // namespace

TEST_CASE("fit on from_tensor_slices(x, y).batch(16) gives the weights fit(x, y) gives, bit for bit") {
  const LabeledData data = three_classes(1);
  Sequential on_arrays = fresh_model(42);
  const History arrays_history = on_arrays.fit(data.x, data.y, {.batch_size = 16, .epochs = 3, .verbose = 0, .shuffle = false});
  Sequential on_dataset = fresh_model(42);
  const History dataset_history = on_dataset.fit(data::from_tensor_slices(data.x, data.y).batch(16), {.epochs = 3, .verbose = 0});
  CHECK(on_dataset.get_weights() == on_arrays.get_weights());  // exact: every bit
  CHECK(dataset_history.history.at("loss") == arrays_history.history.at("loss"));
  // A different seed gives different weights, so the equality above means something.
  Sequential other = fresh_model(43);
  other.fit(data::from_tensor_slices(data.x, data.y).batch(16), {.epochs = 3, .verbose = 0});
  CHECK(other.get_weights() != on_arrays.get_weights());
}

TEST_CASE("the same seed gives bit-identical weights with or without prefetch and parallel map") {
  const LabeledData data = three_classes(2);
  const auto halve = [](LabeledData sample) {
    for (float& v : sample.x.values()) v *= 0.5f;
    return sample;
  };
  const auto source = data::from_tensor_slices(data.x, data.y).shuffle(96, /*seed=*/3);
  const auto train = [](const data::Dataset<LabeledData>& dataset) {
    Sequential model = fresh_model(7);
    model.fit(dataset, {.epochs = 3, .verbose = 0});
    return model.get_weights();
  };
  // Each Dataset below is built afresh, so every shuffle starts from the same seed and epoch.
  const std::vector<float> reference = train(source.map(halve).batch(16));
  CHECK(train(data::from_tensor_slices(data.x, data.y).shuffle(96, 3).map(halve).batch(16).prefetch(data::AUTOTUNE)) == reference);
  CHECK(train(data::from_tensor_slices(data.x, data.y).shuffle(96, 3).map(halve, 2).batch(16)) == reference);
  CHECK(train(data::from_tensor_slices(data.x, data.y).shuffle(96, 3).map(halve, 2, true).batch(16).prefetch(2)) == reference);
  CHECK(train(data::from_tensor_slices(data.x, data.y).shuffle(96, 3).map(halve, data::AUTOTUNE).batch(16).prefetch(data::AUTOTUNE)) ==
        reference);
  CHECK(train(data::from_tensor_slices(data.x, data.y).shuffle(96, 4).map(halve).batch(16)) != reference);
}

namespace {

// Sets the team's size at given steps of fit (callbacks run on fit's thread, whose team it is).
class ResizeTeam : public Callback {
 public:
  explicit ResizeTeam(std::vector<std::pair<int64_t, int>> sizes_at_steps) : sizes_at_steps_(std::move(sizes_at_steps)) {}
  void on_train_batch_begin(int64_t step, const Logs&) override {
    for (const auto& [at_step, threads] : sizes_at_steps_) {
      if (step == at_step) set_num_threads(threads);
    }
  }

 private:
  std::vector<std::pair<int64_t, int>> sizes_at_steps_;
};

}  // namespace

TEST_CASE("the same seed gives bit-identical weights with 1, 2, 3 and 4 threads, and when the team changes size mid-fit") {
  // Large enough for every way the products are shared out: a first layer whose sum is split
  // (64x784 by 784x128), weight gradients cut into row tiles, a wider layer cut into column tiles.
  constexpr int64_t kSamples = 320;
  Tensor x(Shape{kSamples, 784}), y(Shape{kSamples});
  Rng rng(11);
  for (float& v : x.values()) v = rng.uniform(0.0f, 1.0f);
  for (int64_t i = 0; i < kSamples; ++i) y[i] = static_cast<float>(i % 10);
  const auto train = [&](int threads, std::vector<std::pair<int64_t, int>> resizes, bool pipeline_threads) {
    set_num_threads(threads);
    set_random_seed(5);
    Sequential model({layers::Dense(128, Activation::ReLU, /*input_dim=*/784), layers::Dropout(0.2f),
                      layers::Dense(256, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
    model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
    auto dataset = data::from_tensor_slices(x, y).shuffle(kSamples, /*seed=*/9).batch(64);
    if (pipeline_threads) dataset = dataset.map([](LabeledData batch) { return batch; }, 2).prefetch(data::AUTOTUNE);
    model.fit(dataset, {.epochs = 2, .verbose = 0, .callbacks = {ResizeTeam(std::move(resizes))}});
    return model.get_weights();
  };
  const std::vector<float> one_thread = train(1, {}, false);
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    CHECK(train(threads, {}, false) == one_thread);
    CHECK(train(threads, {}, true) == one_thread);
  }
  CHECK(train(2, {{1, 4}, {2, 1}, {3, 3}, {7, 2}}, true) == one_thread);
  set_num_threads(2);
}

TEST_CASE("validation_data as a Dataset gives the val_loss evaluate(dataset) gives") {
  const LabeledData data = three_classes(3), validation = three_classes(4);
  const auto validation_ds = data::from_tensor_slices(validation.x, validation.y).batch(32);
  Sequential model = fresh_model(5);
  const History history =
      model.fit(data::from_tensor_slices(data.x, data.y).batch(16), {.epochs = 2, .verbose = 0, .validation_data = validation_ds});
  REQUIRE(history.history.count("val_loss") == 1);
  REQUIRE(history.history.at("val_loss").size() == 2);
  const Logs evaluated = model.evaluate(validation_ds, {.verbose = 0});
  CHECK(history.history.at("val_loss").back() == evaluated.at("loss"));
  CHECK(history.history.at("val_accuracy").back() == evaluated.at("accuracy"));
  // Arrays as validation_data agree, batched with fit's batch_size.
  Sequential twin = fresh_model(5);
  const History twin_history = twin.fit(data::from_tensor_slices(data.x, data.y).batch(16),
                                        {.batch_size = 32, .epochs = 2, .verbose = 0, .validation_data = validation});
  CHECK(twin_history.history.at("val_loss") == history.history.at("val_loss"));
}

TEST_CASE("steps_per_epoch runs one iterator across epochs of a dataset that repeats forever") {
  const LabeledData data = three_classes(6);
  std::atomic<int64_t> batches_made{0};
  const auto forever = data::from_tensor_slices(data.x, data.y).batch(16).map([&](LabeledData batch) {
    ++batches_made;
    return batch;
  }).repeat();
  REQUIRE(forever.cardinality() == data::kInfiniteCardinality);
  Sequential model = fresh_model(8);
  const History history = model.fit(forever, {.epochs = 3, .verbose = 0, .steps_per_epoch = 5});
  CHECK(history.epoch.size() == 3);
  CHECK(history.history.at("loss").size() == 3);
  CHECK(batches_made == 15);  // 5 per epoch, read on from where the last epoch stopped
  CHECK_THROWS_WITH_AS(model.fit(forever, {.epochs = 1, .verbose = 0}), doctest::Contains("steps_per_epoch"), ValueError);
  CHECK_THROWS_AS(model.evaluate(forever, {.verbose = 0}), ValueError);
}

TEST_CASE("running out of data with steps_per_epoch warns and stops training") {
  const LabeledData data = three_classes(7);
  const auto four_batches = data::from_tensor_slices(data.x, data.y).batch(24);
  Sequential model = fresh_model(9);
  StreamCapture capture(std::cerr);
  const History history = model.fit(four_batches, {.epochs = 5, .verbose = 0, .steps_per_epoch = 3});
  // Epoch 1 takes batches 1-3, epoch 2 gets batch 4 and then nothing: training stops there.
  CHECK(history.epoch.size() == 2);
  CHECK(capture.text().find("ran out of data") != std::string::npos);
  CHECK(capture.text().find("steps_per_epoch * epochs") != std::string::npos);
}

TEST_CASE("\"input_wait\" is the share of the epoch spent waiting for input, and prefetch lowers it") {
  const LabeledData data = three_classes(10);
  // The source takes 2 ms per batch; a training step takes 5 ms (a sleeping callback stands in
  // for a bigger model). Without prefetch each step waits the full 2 ms: a share of about 0.28.
  // With prefetch the next batch is made during the step, so only an epoch's first batch is
  // waited for: about 0.02. A step longer than the source keeps the contrast wide on a loaded
  // machine, where the steps slow down and the share without prefetch falls.
  const auto slow_source = [&] {
    return data::from_tensor_slices(data.x, data.y).batch(6).map([](LabeledData batch) {
      std::this_thread::sleep_for(2ms);
      return batch;
    });
  };
  const auto input_wait = [&](const data::Dataset<LabeledData>& dataset) {
    Sequential model = fresh_model(11);
    const History history =
        model.fit(dataset, {.epochs = 2, .verbose = 0, .callbacks = {SlowStep(5ms)}});
    const std::vector<double>& shares = history.history.at("input_wait");
    REQUIRE(shares.size() == 2);
    for (const double share : shares) {
      CHECK(share >= 0.0);
      CHECK(share <= 1.0);
    }
    return shares.back();
  };
  const double without_prefetch = input_wait(slow_source());
  const double with_prefetch = input_wait(slow_source().prefetch(data::AUTOTUNE));
  CAPTURE(without_prefetch);
  CAPTURE(with_prefetch);
  CHECK(without_prefetch > 0.15);
  CHECK(with_prefetch < without_prefetch / 2);
  // Input that is always ready is hardly waited for.
  const double in_memory = input_wait(data::from_tensor_slices(data.x, data.y).batch(6).cache());
  CAPTURE(in_memory);
  CHECK(in_memory < 0.2);
}

TEST_CASE("evaluate(dataset) and predict(dataset) match the array versions") {
  const LabeledData data = three_classes(12);
  Sequential model = fresh_model(13);
  model.fit(data.x, data.y, {.batch_size = 16, .epochs = 2, .verbose = 0});
  const Logs on_arrays = model.evaluate(data.x, data.y, {.batch_size = 16, .verbose = 0});
  const Logs on_dataset = model.evaluate(data::from_tensor_slices(data.x, data.y).batch(16).prefetch(2), {.verbose = 0});
  CHECK(on_dataset.at("loss") == on_arrays.at("loss"));
  CHECK(on_dataset.at("accuracy") == on_arrays.at("accuracy"));

  const Tensor predicted = model.predict(data.x, {.batch_size = 16});
  const Tensor predicted_ds = model.predict(data::from_tensor_slices(data.x).batch(16).prefetch(data::AUTOTUNE));
  CHECK(predicted_ds.shape() == predicted.shape());
  CHECK(predicted_ds.shape() == Shape{96, 3});
  CHECK(std::vector<float>(predicted_ds.values().begin(), predicted_ds.values().end()) ==
        std::vector<float>(predicted.values().begin(), predicted.values().end()));
  // A last batch of another size, and an infinite dataset refused.
  CHECK(model.predict(data::from_tensor_slices(data.x).batch(40)).shape() == Shape{96, 3});
  CHECK_THROWS_AS(model.predict(data::from_tensor_slices(data.x).batch(16).repeat()), ValueError);
}

TEST_CASE("an exception in the training pipeline leaves fit as a PipelineError, and the next fit works") {
  const LabeledData data = three_classes(14);
  Sequential model = fresh_model(15);
  model.fit(data::from_tensor_slices(data.x, data.y).batch(16), {.epochs = 1, .verbose = 0});  // starts OpenMP's team
  const int64_t threads_before = thread_count();

  const float third_batch_marker = data.x.at(32, 0);  // the first value of batch 2
  const auto failing = data::from_tensor_slices(data.x, data.y).batch(16).map([=](LabeledData batch) {
    if (batch.x[0] == third_batch_marker) throw std::runtime_error("corrupt batch");
    return batch;
  }, 2).prefetch(2);
  for (int attempt = 0; attempt < 3; ++attempt) {
    CHECK_THROWS_WITH_AS(model.fit(failing, {.epochs = 2, .verbose = 0}), doctest::Contains("map: element 2: corrupt batch"), data::PipelineError);
  }
  CHECK(thread_count() == threads_before);  // the pipeline's threads were joined

  const History history = model.fit(data::from_tensor_slices(data.x, data.y).batch(16).prefetch(2), {.epochs = 2, .verbose = 0});
  REQUIRE(history.history.at("loss").size() == 2);
  CHECK(std::isfinite(history.history.at("loss").back()));
  CHECK(thread_count() == threads_before);
}

TEST_CASE("fit refuses negative epochs and initial_epoch, and a dataset that gives no batches") {
  const LabeledData data = three_classes(30);
  const auto batches = data::from_tensor_slices(data.x, data.y).batch(16);
  Sequential model = fresh_model(31);
  const std::vector<float> before = model.get_weights();
  CHECK_THROWS_WITH_AS(model.fit(batches, {.epochs = -1, .verbose = 0}), doctest::Contains("epochs must be at least 0, got -1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(model.fit(batches, {.epochs = 2, .verbose = 0, .initial_epoch = -3}),
                       doctest::Contains("initial_epoch must be at least 0, got -3"), ValueError);
  const auto nothing = data::from_tensor_slices(data.x, data.y).filter([](const LabeledData&) { return false; }).batch(16);
  CHECK_THROWS_WITH_AS(model.fit(nothing, {.epochs = 2, .verbose = 0}), doctest::Contains("is the dataset empty?"), ValueError);
  CHECK(model.get_weights() == before);
  // epochs == initial_epoch trains nothing, as in Keras, and is not an error.
  CHECK(model.fit(batches, {.epochs = 1, .verbose = 0, .initial_epoch = 1}).epoch.empty());
}
