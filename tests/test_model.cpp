// Sequential end to end: learning, determinism, weight files, Keras's fit semantics, and the
// errors a user meets first (shapes, compile order, labels).
#include <doctest/doctest.h>

#include "error_message.hpp"
#include "stream_capture.hpp"

#include <kiln/kiln.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>

#include <unistd.h>

using namespace kiln;

namespace {

using kiln::testing::contains;
using kiln::testing::error_message;
using kiln::testing::StreamCapture;

// Two interleaved spirals, one per class: not linearly separable, so passing needs the hidden
// layer to learn.
LabeledData two_spirals(int64_t points_per_class, uint64_t seed) {
  Tensor x(Shape{2 * points_per_class, 2}), y(Shape{2 * points_per_class});
  Rng rng(seed);
  for (int64_t i = 0; i < points_per_class; ++i) {
    const float t = 0.25f + 3.0f * static_cast<float>(i) / static_cast<float>(points_per_class);  // radius and angle
    for (int cls = 0; cls < 2; ++cls) {
      const int64_t row = 2 * i + cls;
      const float angle = 2.2f * t + 3.14159265f * static_cast<float>(cls);
      x.at(row, 0) = t * std::cos(angle) + rng.uniform(-0.05f, 0.05f);
      x.at(row, 1) = t * std::sin(angle) + rng.uniform(-0.05f, 0.05f);
      y[row] = static_cast<float>(cls);
    }
  }
  return {std::move(x), std::move(y)};
}

Sequential small_classifier() {
  return Sequential({layers::Dense(32, Activation::Tanh, /*input_dim=*/2), layers::Dense(32, Activation::ReLU),
                     layers::Dropout(0.1f), layers::Dense(2, Activation::Softmax)});
}

std::string temporary_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kiln_test_model_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("the whole stack learns two spirals") {
  set_random_seed(1);
  const LabeledData data = two_spirals(200, 5);
  Sequential model = small_classifier();
  model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const History history = model.fit(data.x, data.y, {.batch_size = 32, .epochs = 150, .verbose = 0});
  CHECK(history.history.at("loss").back() < history.history.at("loss").front() / 4);
  CHECK(model.evaluate(data.x, data.y, {.verbose = 0}).at("accuracy") >= 0.97);
}

TEST_CASE("the whole stack learns XOR with SGD and binary cross-entropy") {
  set_random_seed(2);
  Tensor x(Shape{4, 2}, {0, 0, 0, 1, 1, 0, 1, 1}), y(Shape{4, 1}, {0, 1, 1, 0});
  Sequential model({layers::Dense(8, Activation::Tanh, 2), layers::Dense(1, Activation::Sigmoid)});
  model.compile(optimizers::SGD(0.5f, 0.9f), losses::BinaryCrossentropy(), {metrics::Accuracy()});
  model.fit(x, y, {.batch_size = 4, .epochs = 300, .verbose = 0});
  const Tensor p = model.predict(x);
  CHECK(p[0] < 0.2f);
  CHECK(p[1] > 0.8f);
  CHECK(p[2] > 0.8f);
  CHECK(p[3] < 0.2f);
}

TEST_CASE("the same seed and thread count give bit-identical weights") {
  const LabeledData data = two_spirals(100, 9);
  auto train = [&](uint64_t seed) {
    set_random_seed(seed);
    Sequential model = small_classifier();
    model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
    model.fit(data.x, data.y, {.batch_size = 16, .epochs = 3, .verbose = 0});
    return model.get_weights();
  };
  const std::vector<float> first = train(42), second = train(42), other = train(43);
  CHECK(first == second);  // exact: every bit
  CHECK(first != other);
}

TEST_CASE("fit without shuffling over one full batch is one train_on_batch step") {
  const LabeledData data = two_spirals(20, 3);
  set_random_seed(11);
  Sequential by_fit({layers::Dense(8, Activation::ReLU, 2), layers::Dense(2, Activation::Softmax)});
  set_random_seed(11);
  Sequential by_step({layers::Dense(8, Activation::ReLU, 2), layers::Dense(2, Activation::Softmax)});
  by_fit.compile(optimizers::SGD(0.1f), losses::SparseCategoricalCrossentropy());
  by_step.compile(optimizers::SGD(0.1f), losses::SparseCategoricalCrossentropy());
  REQUIRE(by_fit.get_weights() == by_step.get_weights());
  by_fit.fit(data.x, data.y, {.batch_size = 40, .epochs = 1, .verbose = 0, .shuffle = false});
  by_step.train_on_batch(data.x, data.y);
  CHECK(by_fit.get_weights() == by_step.get_weights());
}

// A parameterless pass-through that counts how often backward reaches it.
class CountingLayer : public Layer {
 public:
  std::string type_name() const override { return "Counting"; }
  Shape build(const Shape& input_shape) override { return input_shape; }
  const Tensor& forward(const Tensor& x, bool) override { return x; }
  const Tensor& backward(const Tensor& dy) override {
    ++backward_calls;
    return dy;
  }
  int backward_calls = 0;
};

TEST_CASE("backward stops at the first layer with parameters") {
  const LabeledData data = two_spirals(10, 4);
  auto before = std::make_shared<CountingLayer>();
  auto between = std::make_shared<CountingLayer>();
  Sequential model({Shared<Layer>(before), layers::Dense(4, Activation::ReLU, 2), Shared<Layer>(between),
                    layers::Dense(2, Activation::Softmax)});
  model.compile(optimizers::SGD(0.1f), losses::SparseCategoricalCrossentropy());
  model.train_on_batch(data.x, data.y);
  CHECK(before->backward_calls == 0);  // nothing before the first Dense has anything to learn
  CHECK(between->backward_calls == 1);
  CHECK_FALSE(model.layer(1).input_gradient_needed());  // the first Dense's dx would go nowhere
  CHECK(model.layer(3).input_gradient_needed());

  SUBCASE("also when the first Dense is added to an already built model") {
    Sequential grown({layers::Flatten(Shape{2})});
    grown.add(layers::Dense(3));
    grown.add(layers::Dense(2, Activation::Softmax));
    CHECK_FALSE(grown.layer(1).input_gradient_needed());
    CHECK(grown.layer(2).input_gradient_needed());
  }
}

TEST_CASE("validation_split validates on the last samples, before shuffling") {
  set_random_seed(4);
  const LabeledData data = two_spirals(50, 2);  // 100 samples
  Sequential model = small_classifier();
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const History history = model.fit(data.x, data.y, {.batch_size = 10, .epochs = 2, .verbose = 0, .validation_split = 0.2});
  REQUIRE(history.history.at("val_loss").size() == 2);
  REQUIRE(history.history.count("val_accuracy") == 1);
  // The last epoch's validation used the final weights on rows 80..99.
  const Tensor x_last = data.x.slice_rows(80, 100), y_last = data.y.slice_rows(80, 100);
  const Logs evaluated = model.evaluate(x_last, y_last, {.batch_size = 10, .verbose = 0});
  CHECK(history.history.at("val_loss").back() == doctest::Approx(evaluated.at("loss")).epsilon(1e-6));
  CHECK(history.history.at("val_accuracy").back() == doctest::Approx(evaluated.at("accuracy")));
  CHECK(history.epoch_seconds.size() == 2);
  CHECK(history.epoch == std::vector<int>{0, 1});
}

TEST_CASE("validation_data is evaluated every epoch") {
  set_random_seed(5);
  const LabeledData train = two_spirals(40, 1), validation = two_spirals(10, 2);
  Sequential model = small_classifier();
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const History history = model.fit(train.x, train.y, {.epochs = 3, .verbose = 0, .validation_data = validation});
  CHECK(history.history.at("val_accuracy").size() == 3);
  CHECK(history.history.at("val_loss").back() ==
        doctest::Approx(model.evaluate(validation.x, validation.y, {.verbose = 0}).at("loss")).epsilon(1e-6));
}

TEST_CASE("predict is deterministic (Dropout is off outside training) and matches forward") {
  set_random_seed(6);
  const LabeledData data = two_spirals(30, 4);
  Sequential model = small_classifier();
  const Tensor first = model.predict(data.x, {.batch_size = 7});
  const Tensor second = model.predict(data.x, {.batch_size = 60});
  REQUIRE(first.shape() == Shape({60, 2}));
  const Tensor again = model.predict(data.x, {.batch_size = 7});
  CHECK(std::equal(first.values().begin(), first.values().end(), again.values().begin()));  // bit for bit
  for (int64_t i = 0; i < first.size(); ++i) CHECK(first[i] == doctest::Approx(second[i]).epsilon(1e-5));
  const Tensor& forward = model.forward(data.x);
  for (int64_t i = 0; i < first.size(); ++i) CHECK(first[i] == doctest::Approx(forward[i]).epsilon(1e-5));
  for (int64_t r = 0; r < first.rows(); ++r) CHECK(first.at(r, 0) + first.at(r, 1) == doctest::Approx(1.0));
}

TEST_CASE("save_weights and load_weights round-trip exactly") {
  set_random_seed(7);
  const LabeledData data = two_spirals(30, 4);
  Sequential trained = small_classifier();
  trained.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
  trained.fit(data.x, data.y, {.epochs = 2, .verbose = 0});
  const std::string path = temporary_path("roundtrip.weights.npz");
  trained.save_weights(path);

  Sequential restored = small_classifier();
  CHECK(restored.get_weights() != trained.get_weights());
  restored.load_weights(path);
  CHECK(restored.get_weights() == trained.get_weights());
  const Tensor a = trained.predict(data.x), b = restored.predict(data.x);
  CHECK(std::equal(a.values().begin(), a.values().end(), b.values().begin()));

  // Names and shapes as Keras stores them: <layer>/kernel is [inputs, units].
  const std::vector<io::NamedArray> arrays = io::read_npz(path);
  REQUIRE(arrays.size() == 6);
  CHECK(arrays[0].name == "dense/kernel");
  CHECK(arrays[0].shape == Shape({2, 32}));
  CHECK(arrays[1].name == "dense/bias");
  CHECK(arrays[5].name == "dense_2/bias");
  CHECK(arrays[5].shape == Shape({2}));
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    CHECK(entry.path().string().rfind(path + ".tmp", 0) != 0);  // no temporary file left behind
  }
  std::filesystem::remove(path);
}

TEST_CASE("load_weights refuses a file that does not fit, and leaves the model unchanged") {
  set_random_seed(8);
  const std::string path = temporary_path("other.weights.npz");
  Sequential wider({layers::Dense(16, Activation::ReLU, 2), layers::Dense(2, Activation::Softmax)});
  wider.save_weights(path);
  Sequential model({layers::Dense(8, Activation::ReLU, 2), layers::Dense(2, Activation::Softmax)});
  model.build(Shape{2});
  const std::vector<float> before = model.get_weights();
  CHECK_THROWS_WITH_AS(model.load_weights(path), doctest::Contains("'dense/kernel' has shape 2x16 but the model's is 2x8"),
                       ShapeError);
  CHECK(model.get_weights() == before);

  Sequential deeper({layers::Dense(16, Activation::ReLU, 2), layers::Dense(2), layers::Dense(2, Activation::Softmax)});
  CHECK_THROWS_WITH_AS(deeper.load_weights(path), doctest::Contains("no array 'dense_2/kernel'"), FileError);
  Sequential shallower({layers::Dense(16, Activation::ReLU, 2)});
  CHECK_THROWS_WITH_AS(shallower.load_weights(path), doctest::Contains("holds an array 'dense_1/kernel' that the model"), FileError);
  std::filesystem::remove(path);
  CHECK_THROWS_AS(model.load_weights(path), FileError);
}

TEST_CASE("shape errors name the layer and both shapes") {
  set_random_seed(9);
  Tensor images(Shape{4, 28, 28}), labels(Shape{4});
  Sequential no_flatten({layers::Dense(10, Activation::Softmax)});
  no_flatten.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
  CHECK_THROWS_WITH_AS(no_flatten.fit(images, labels, {.verbose = 0}),
                       "Dense 'dense' expects input of a flat vector of features, got 28x28 (did you forget Flatten?)",
                       ShapeError);

  Sequential declared({layers::Dense(10, Activation::Softmax, /*input_dim=*/784)});
  declared.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
  CHECK_THROWS_WITH_AS(declared.fit(images, labels, {.verbose = 0}),
                       "model 'sequential' expects samples of shape 784, but x has samples of shape 28x28 (reshape the "
                       "data, or add Flatten)",
                       ShapeError);

  Sequential flat({layers::Flatten(), layers::Dense(10, Activation::Softmax)});
  flat.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
  Tensor too_few_labels(Shape{3});
  CHECK_THROWS_WITH_AS(flat.fit(images, too_few_labels, {.verbose = 0}),
                       doctest::Contains("x has 4 samples but y has 3"), ShapeError);
  Tensor one_hot(Shape{4, 10});
  CHECK_THROWS_WITH_AS(flat.fit(images, one_hot, {.verbose = 0}), doctest::Contains("one class index per sample"),
                       ShapeError);
}

TEST_CASE("fit before compile and labels out of range are clear errors") {
  set_random_seed(10);
  Tensor x(Shape{4, 3}, 0.5f), y(Shape{4}, {0, 1, 2, 7});
  Sequential model({layers::Dense(3, Activation::Softmax, 3)});
  CHECK_THROWS_WITH_AS(model.fit(x, y, {.verbose = 0}), doctest::Contains("must be compiled before fit()"), Error);
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy());
  CHECK_THROWS_WITH_AS(model.fit(x, y, {.verbose = 0}),
                       doctest::Contains("label 7 of sample 3 is not a class index of the model's 3 outputs"),
                       ValueError);
  CHECK_THROWS_AS(model.fit(x, Tensor(Shape{4}), {.batch_size = 0, .verbose = 0}), ValueError);
  CHECK_THROWS_AS(model.fit(x, Tensor(Shape{4}), {.verbose = 0, .validation_split = 1.0}), ValueError);
}

TEST_CASE("a loss that becomes NaN stops fit with a clear error") {
  set_random_seed(12);
  Tensor x(Shape{4, 2}, {1, 2, 3, NAN, 5, 6, 7, 8}), y(Shape{4, 1}, {0, 1, 0, 1});
  Sequential model({layers::Dense(1, Activation::Linear, 2)});
  model.compile(optimizers::SGD(), losses::MeanSquaredError());
  CHECK_THROWS_WITH_AS(model.fit(x, y, {.batch_size = 4, .verbose = 0}),
                       doctest::Contains("at epoch 1, step 1, the loss was nan, so the step was not applied"), ValueError);
}

TEST_CASE("a step whose loss or gradients are not finite leaves weights, optimizer and metrics as they were") {
  const Tensor good_x(Shape{4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), y(Shape{4}, {0, 1, 0, 1});
  Tensor nan_x = good_x, infinite_x = good_x;
  nan_x.at(1, 1) = NAN;
  infinite_x.at(2, 0) = INFINITY;
  const auto make_model = [] {
    set_random_seed(21);
    Sequential model({layers::Dense(3, Activation::ReLU, 2), layers::Dense(2, Activation::Softmax)});
    model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
    return model;
  };
  Sequential model = make_model(), twin = make_model();
  model.train_on_batch(good_x, y);
  const std::vector<float> before = model.get_weights();
  for (const Tensor* bad : {&nan_x, &infinite_x}) {
    const std::string message = error_message<ValueError>([&] { model.train_on_batch(*bad, y); });
    CHECK(contains(message, "was not applied"));
    CHECK(model.get_weights() == before);
  }
  // The refused steps left no trace: the next good step matches a twin that never saw them,
  // Adam's moments and step counter included.
  twin.train_on_batch(good_x, y);
  model.train_on_batch(good_x, y);
  twin.train_on_batch(good_x, y);
  CHECK(model.get_weights() == twin.get_weights());
  CHECK(model.optimizer().iterations() == twin.optimizer().iterations());

  // In fit, the batches before the bad one are trained, and the bad one is not.
  Tensor x_with_bad_batch(Shape{8, 2});
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t f = 0; f < 2; ++f) x_with_bad_batch.at(i, f) = (i < 4 ? good_x : nan_x).at(i % 4, f);
  }
  const Tensor y8(Shape{8}, {0, 1, 0, 1, 0, 1, 0, 1});
  Sequential fitted = make_model(), first_batch_only = make_model();
  CHECK_THROWS_AS(fitted.fit(x_with_bad_batch, y8, {.batch_size = 4, .verbose = 0, .shuffle = false}), ValueError);
  first_batch_only.fit(good_x, y, {.batch_size = 4, .verbose = 0, .shuffle = false});
  CHECK(fitted.get_weights() == first_batch_only.get_weights());
}

TEST_CASE("summary prints Keras's table with names, output shapes and counts") {
  Sequential model({layers::Flatten(Shape{28, 28}), layers::Dense(128, Activation::ReLU), layers::Dropout(0.2f),
                    layers::Dense(10, Activation::Softmax)});
  std::ostringstream out;
  model.summary(out);
  const std::string text = out.str();
  CHECK(text.find("Model: \"sequential\"") != std::string::npos);
  CHECK(text.find("│ dense (Dense)                   │ (None, 128)            │       100,480 │") != std::string::npos);
  CHECK(text.find("│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │") != std::string::npos);
  CHECK(text.find("│ flatten (Flatten)               │ (None, 784)            │             0 │") != std::string::npos);
  CHECK(text.find(" Total params: 101,770 (397.54 KB)") != std::string::npos);
  CHECK(model.parameter_count() == 101770);
}

TEST_CASE("verbose 2 prints one line per epoch in Keras's format") {
  set_random_seed(13);
  const LabeledData data = two_spirals(16, 1);
  Sequential model = small_classifier();
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  std::string text;
  {
    StreamCapture captured(std::cout);
    model.fit(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = 2, .validation_split = 0.25});
    text = captured.text();
  }
  CHECK(text.find("Epoch 1/2\n3/3 - ") != std::string::npos);
  CHECK(text.find("Epoch 2/2\n3/3 - ") != std::string::npos);
  CHECK(text.find("/step - accuracy: ") != std::string::npos);
  CHECK(text.find(" - loss: ") != std::string::npos);
  CHECK(text.find(" - val_accuracy: ") != std::string::npos);
  CHECK(text.find(" - val_loss: ") != std::string::npos);
  CHECK(text.find('\r') == std::string::npos);  // no in-place redraws when not on a terminal
}
