// Tests for kiln/model_file.hpp: .kiln files hold the architecture, weights, optimizer state and
// random states, so a loaded model predicts as the saved one and trains on exactly as it would
// have; damaged, foreign or mismatched files are refused by name and leave the model untouched.
#include "error_message.hpp"
#include "temporary_directory.hpp"

#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

using namespace kiln;
using kiln::testing::contains;
using kiln::testing::error_message;
using kiln::testing::TemporaryDirectory;

namespace {

Tensor random_images(int64_t count, uint64_t seed) {
  Tensor x({count, 4, 4});
  Rng rng(seed);
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform(0.0f, 1.0f);
  return x;
}

Tensor labels_for(const Tensor& x) {
  Tensor y({x.rows()});
  for (int64_t row = 0; row < x.rows(); ++row) y.data()[row] = x.data()[row * 16] > 0.5f ? 1.0f : (x.data()[row * 16 + 1] > 0.5f ? 2.0f : 0.0f);
  return y;
}

// Flatten, Dense + relu, Dropout, Dense + softmax: weights, a slotted optimizer and random state.
Sequential small_model(int hidden_units = 8) {
  Sequential model({layers::Flatten({4, 4}), layers::Dense(hidden_units, Activation::ReLU), layers::Dropout(0.25f),
                    layers::Dense(3, Activation::Softmax)});
  model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  return model;
}

std::string entry_text(const std::string& path, const std::string& entry_name) {
  const std::vector<unsigned char> bytes = io::read_file_bytes(path, "model file");
  io::ZipReader zip(bytes, path, "model file");
  const io::ZipReader::Entry* entry = zip.find(entry_name);
  REQUIRE(entry != nullptr);
  std::vector<unsigned char> storage;
  const std::span<const unsigned char> contents = zip.contents(*entry, storage);
  return {contents.begin(), contents.end()};
}

std::vector<std::string> entry_names(const std::string& path) {
  const std::vector<unsigned char> bytes = io::read_file_bytes(path, "model file");
  const io::ZipReader zip(bytes, path, "model file");
  std::vector<std::string> names;
  for (const io::ZipReader::Entry& entry : zip.entries()) names.push_back(entry.name);
  return names;
}

std::vector<float> weights_of(const Sequential& model) { return model.get_weights(); }

// The small model after one step (so its optimizer has slots), saved to `path`.
Sequential saved_after_one_step(const std::string& path) {
  Sequential model = small_model();
  const Tensor x = random_images(8, 1);
  model.train_on_batch(x, labels_for(x));
  model.save(path);
  return model;
}

}  // namespace

TEST_CASE("model file: a loaded model has the saved architecture, settings and weights, and predicts the same") {
  TemporaryDirectory directory;
  const std::string path = directory.file("m.kiln");
  set_random_seed(3);
  Sequential model = small_model();
  const Tensor x = random_images(64, 1), y = labels_for(x);
  model.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0});
  model.save(path);

  Sequential loaded = load_model(path);
  CHECK(loaded.layer_count() == 4);
  CHECK(loaded.layer(1).name() == "dense");
  CHECK(loaded.layer(3).name() == "dense_1");
  CHECK(dynamic_cast<layers::Dense&>(loaded.layer(1)).units() == 8);
  CHECK(dynamic_cast<layers::Dropout&>(loaded.layer(2)).rate() == 0.25f);
  CHECK(loaded.input_shape() == Shape{4, 4});
  REQUIRE(loaded.compiled());
  CHECK(loaded.optimizer().name() == "adam");
  CHECK(loaded.optimizer().learning_rate() == 0.01f);
  CHECK(loaded.optimizer().iterations() == 8);
  CHECK(loaded.loss().name() == "sparse_categorical_crossentropy");
  CHECK(loaded.epochs_completed() == 2);
  CHECK(weights_of(loaded) == weights_of(model));

  const Tensor a = model.predict(x), b = loaded.predict(x);
  CHECK(std::equal(a.data(), a.data() + a.size(), b.data()));
  // Evaluation goes through the loaded loss and metric.
  CHECK(loaded.evaluate(x, y, {.verbose = 0}).at("accuracy") == model.evaluate(x, y, {.verbose = 0}).at("accuracy"));
}

TEST_CASE("model file: a zip of config.json in Keras's terms, metadata.json and two .npz archives") {
  TemporaryDirectory directory;
  const std::string path = directory.file("m.kiln");
  Sequential model = saved_after_one_step(path);

  CHECK(entry_names(path) == std::vector<std::string>{"config.json", "metadata.json", "model.weights.npz", "optimizer.npz"});
  const std::string config = entry_text(path, "config.json");
  CHECK(contains(config, "\"class_name\": \"Sequential\""));
  CHECK(contains(config, "\"class_name\": \"Dense\""));
  CHECK(contains(config, "\"units\": 8"));
  CHECK(contains(config, "\"activation\": \"relu\""));
  CHECK(contains(config, "\"rate\": 0.25"));
  CHECK(contains(config, "\"input_shape\": [\n      null,\n      4,\n      4\n    ]"));
  CHECK(contains(config, "\"learning_rate\": 0.01,"));  // the float's shortest form, as Keras shows it
  CHECK(contains(config, "\"class_name\": \"SparseCategoricalCrossentropy\""));
  const std::string metadata = entry_text(path, "metadata.json");
  CHECK(contains(metadata, "\"format\": \"kiln.model\""));
  CHECK(contains(metadata, "\"iterations\": 1"));
  CHECK(contains(metadata, "\"dropout\""));

  // The weights entry is exactly what save_weights writes, so numpy reads both alike.
  model.save_weights(directory.file("w.npz"));
  std::ifstream weights_file(directory.file("w.npz"), std::ios::binary);
  const std::string weights{std::istreambuf_iterator<char>(weights_file), {}};
  CHECK(entry_text(path, "model.weights.npz") == weights);
  // The optimizer's slots, per parameter, under Keras's names.
  const std::string slots_path = directory.file("slots.npz");
  io::write_file_atomically(slots_path, entry_text(path, "optimizer.npz"));
  std::vector<std::string> slot_names;
  for (const io::NamedArray& array : io::read_npz(slots_path)) slot_names.push_back(array.name);
  CHECK(slot_names == std::vector<std::string>{"momentum/dense/bias", "momentum/dense/kernel", "momentum/dense_1/bias",
                                               "momentum/dense_1/kernel", "velocity/dense/bias", "velocity/dense/kernel",
                                               "velocity/dense_1/bias", "velocity/dense_1/kernel"});
}

TEST_CASE("model file: a loaded model trains on bit for bit as the saved one does") {
  TemporaryDirectory directory;
  const std::string path = directory.file("m.kiln");
  const Tensor x = random_images(16, 4), y = labels_for(x);
  Sequential model = small_model();
  for (int step = 0; step < 3; ++step) model.train_on_batch(x, y);
  model.save(path);
  Sequential loaded = load_model(path);
  // Adam's moments and step count and Dropout's seed and position all carry over: any of them
  // lost would change the next steps' weights.
  for (int step = 0; step < 3; ++step) {
    model.train_on_batch(x, y);
    loaded.train_on_batch(x, y);
  }
  CHECK(weights_of(loaded) == weights_of(model));
}

TEST_CASE("model file: fit resumed from a checkpoint at epoch 2 of 4 ends with the same bytes as a run never stopped") {
  TemporaryDirectory directory;
  const Tensor x = random_images(96, 5), y = labels_for(x);
  const FitOptions four_epochs{.batch_size = 16, .epochs = 4, .verbose = 0};

  set_random_seed(11);
  Sequential uninterrupted = small_model();
  uninterrupted.fit(x, y, four_epochs);
  uninterrupted.save_weights(directory.file("uninterrupted.npz"));

  // The first run stops after epoch 2, leaving its checkpoint (as a kill would: nothing after it).
  set_random_seed(11);
  Sequential first = small_model();
  first.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0,
                   .callbacks = {callbacks::ModelCheckpoint(directory.file("checkpoint.kiln"))}});

  SUBCASE("resumed with load_model") {
    set_random_seed(11);  // the new process sets the same seed as the first
    Sequential resumed = load_model(directory.file("checkpoint.kiln"));
    FitOptions options = four_epochs;
    options.initial_epoch = resumed.epochs_completed();
    CHECK(options.initial_epoch == 2);
    resumed.fit(x, y, options);
    resumed.save_weights(directory.file("resumed.npz"));
  }
  SUBCASE("resumed with restore_model into a model built by the same code") {
    set_random_seed(11);
    Sequential resumed = small_model();
    restore_model(resumed, directory.file("checkpoint.kiln"));
    FitOptions options = four_epochs;
    options.initial_epoch = resumed.epochs_completed();
    resumed.fit(x, y, options);
    resumed.save_weights(directory.file("resumed.npz"));
  }
  std::ifstream a(directory.file("uninterrupted.npz"), std::ios::binary), b(directory.file("resumed.npz"), std::ios::binary);
  const std::string uninterrupted_bytes{std::istreambuf_iterator<char>(a), {}};
  const std::string resumed_bytes{std::istreambuf_iterator<char>(b), {}};
  CHECK(uninterrupted_bytes.size() > 0);
  CHECK(resumed_bytes == uninterrupted_bytes);
}

TEST_CASE("model file: truncated, foreign and mismatched files are refused by name, and the model is untouched") {
  TemporaryDirectory directory;
  const std::string path = directory.file("m.kiln");
  Sequential saved = saved_after_one_step(path);

  Sequential target = small_model();
  const std::vector<float> before = weights_of(target);

  SUBCASE("truncated") {
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    const std::string message = error_message<FileError>([&] { restore_model(target, path); });
    CHECK(contains(message, path));
    INFO(message);
    CHECK(contains(message, "truncated"));
    CHECK_THROWS_AS(load_model(path), FileError);
  }
  SUBCASE("a weights file, not a model file") {
    saved.save_weights(directory.file("w.npz"));
    const std::string message = error_message<FileError>([&] { load_model(directory.file("w.npz")); });
    CHECK(contains(message, "it has no config.json, so it is not a kiln model file"));
  }
  SUBCASE("not a zip file at all") {
    io::write_file_atomically(path, "{\"class_name\": \"Sequential\"}\n");
    CHECK(contains(error_message<FileError>([&] { restore_model(target, path); }), "not a zip file"));
  }
  SUBCASE("another architecture") {
    Sequential wider = small_model(9);
    const std::vector<float> wider_before = weights_of(wider);
    const std::string message = error_message<FileError>([&] { restore_model(wider, path); });
    CHECK(contains(message, "layer 2 of 4"));
    CHECK(contains(message, "\"units\":8"));
    CHECK(contains(message, "\"units\":9"));
    CHECK(weights_of(wider) == wider_before);
  }
  SUBCASE("another optimizer") {
    target.compile(optimizers::SGD(0.1f, 0.9f), losses::SparseCategoricalCrossentropy());
    CHECK(contains(error_message<FileError>([&] { restore_model(target, path); }), "Adam optimizer, but model"));
  }
  SUBCASE("a missing file") {
    CHECK(contains(error_message<FileError>([&] { load_model(directory.file("none.kiln")); }), "none.kiln"));
  }
  SUBCASE("valid JSON of the wrong form: a number for a name, a list for an object") {
    for (const std::string config : {R"({"class_name": 5})", R"([1, 2])", R"({"class_name": "Sequential", "config": [], "build_config": 3})"}) {
      std::vector<std::pair<std::string, std::string>> entries{{"config.json", config}};
      for (const char* name : {"metadata.json", "model.weights.npz", "optimizer.npz"}) entries.emplace_back(name, entry_text(path, name));
      std::vector<io::ZipEntryToWrite> to_write;
      for (const auto& [name, text] : entries) {
        to_write.push_back({name, {std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size())}});
      }
      const std::string damaged = directory.file("damaged.kiln");
      io::AtomicFile out(damaged);
      io::write_zip(to_write, [&](std::span<const unsigned char> bytes) { out.write(bytes.data(), bytes.size()); }, damaged);
      out.commit();
      INFO(config);
      CHECK(contains(error_message<FileError>([&] { load_model(damaged); }), damaged));
      CHECK(contains(error_message<FileError>([&] { restore_model(target, damaged); }), damaged));
    }
  }
  CHECK(weights_of(target) == before);
  CHECK(target.epochs_completed() == 0);
}

TEST_CASE("model file: a layer kiln cannot describe is refused by name, and nothing is written") {
  struct Doubler : Layer {
    std::string type_name() const override { return "Doubler"; }
    Shape build(const Shape& input_shape) override { return input_shape; }
    const Tensor& forward(const Tensor& x, bool) override { return x; }
    const Tensor& backward(const Tensor& dy) override { return dy; }
  };
  TemporaryDirectory directory;
  Sequential model({layers::Flatten({4, 4}), Doubler(), layers::Dense(2)});
  const std::string message = error_message<ValueError>([&] { model.save(directory.file("m.kiln")); });
  CHECK(contains(message, "layer 'doubler' of type Doubler"));
  CHECK(directory.listing().empty());
}

TEST_CASE("model file: a process killed while it writes checkpoints, 20 times, always leaves a file that loads") {
  TemporaryDirectory directory;
  const std::string path = directory.file("checkpoint.kiln");
  const Tensor x = random_images(256, 9), y = labels_for(x);
  Sequential model = small_model(64);
  model.save(path);
  std::mt19937 random(5);
  for (int kill = 0; kill < 20; ++kill) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // One thread in the child: a forked OpenMP team cannot be used.
      set_num_threads(1);
      model.fit(x, y, {.batch_size = 32, .epochs = 1000, .verbose = 0,
                       .callbacks = {callbacks::ModelCheckpoint(path, {.save_freq = 1})}});
      ::_exit(0);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30000)(random)));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    const Sequential loaded = load_model(path);  // throws if the file is not whole
    CHECK(loaded.layer_count() == 4);
  }
}

TEST_CASE("BackupAndRestore: a fit killed after epoch 2 of 4 goes on from its backup to the uninterrupted run's weights") {
  TemporaryDirectory directory;
  const Tensor x = random_images(96, 6), y = labels_for(x);
  const std::string backup_dir = directory.file("backup");

  set_random_seed(21);
  Sequential uninterrupted = small_model();
  uninterrupted.fit(x, y, {.batch_size = 16, .epochs = 4, .verbose = 0});

  set_random_seed(21);
  Sequential first = small_model();
  struct Killed {};
  const auto kill_after_epoch_2 = callbacks::LambdaCallback({.on_epoch_end = [](int epoch, const Logs&) {
    if (epoch == 1) throw Killed{};
  }});
  CHECK_THROWS_AS(first.fit(x, y, {.batch_size = 16, .epochs = 4, .verbose = 0,
                                   .callbacks = {callbacks::BackupAndRestore(backup_dir), kill_after_epoch_2}}),
                  Killed);
  const std::string backup = backup_dir + "/latest.kiln";
  REQUIRE(std::filesystem::exists(backup));

  // The program runs again from the start: same seed, same model code, same fit call.
  set_random_seed(21);
  Sequential second = small_model();
  const History history =
      second.fit(x, y, {.batch_size = 16, .epochs = 4, .verbose = 0, .callbacks = {callbacks::BackupAndRestore(backup_dir)}});
  CHECK(history.epoch == std::vector<int>{2, 3});
  CHECK(weights_of(second) == weights_of(uninterrupted));
  CHECK_FALSE(std::filesystem::exists(backup));  // a fit that ended deletes its backup
}

namespace {

// Weights after 4 epochs in one fit, and after a fit stopped at epoch 2, saved, loaded and
// resumed to epoch 4; each fit gets a fresh pipeline from make_batches, as a new process would.
struct WholeAndResumed {
  std::vector<float> whole, resumed, after_two;
};
WholeAndResumed whole_and_resumed(const std::function<data::Dataset<LabeledData>()>& make_batches, FitOptions options) {
  options.verbose = 0;
  options.epochs = 4;
  set_random_seed(31);
  Sequential whole = small_model();
  whole.fit(make_batches(), options);

  TemporaryDirectory directory;
  set_random_seed(31);
  Sequential first = small_model();
  FitOptions first_options = options;
  first_options.epochs = 2;
  first.fit(make_batches(), first_options);
  first.save(directory.file("m.kiln"));
  Sequential resumed = load_model(directory.file("m.kiln"));
  options.initial_epoch = 2;
  resumed.fit(make_batches(), options);
  return {weights_of(whole), weights_of(resumed), weights_of(first)};
}

}  // namespace

TEST_CASE("fit on a dataset resumed at epoch 2 shuffles as the uninterrupted run did") {
  const Tensor x = random_images(96, 8), y = labels_for(x);
  const WholeAndResumed runs = whole_and_resumed([&] { return data::from_tensor_slices(x, y).shuffle(96, 4).batch(16); }, {});
  CHECK(runs.resumed == runs.whole);
}

TEST_CASE("fit with steps_per_epoch over a repeated dataset, resumed at epoch 2, trains on the batches the uninterrupted run did") {
  const Tensor x = random_images(96, 8), y = labels_for(x);
  // 6 batches a pass and 4 an epoch: epochs start mid-pass, and each pass is shuffled anew.
  const WholeAndResumed runs = whole_and_resumed([&] { return data::from_tensor_slices(x, y).shuffle(96, 4).batch(16).repeat(); },
                                                 {.steps_per_epoch = 4});
  CHECK(runs.resumed == runs.whole);
  CHECK(runs.resumed != runs.after_two);
}

TEST_CASE("a random map seeded through data::random draws, when resumed at epoch 2, what the uninterrupted run drew") {
  const Tensor x = random_images(96, 8), y = labels_for(x);
  // Noise added to each batch from its own seed: a stand-in for random augmentation.
  const WholeAndResumed seeded = whole_and_resumed(
      [&] {
        return data::zip(data::from_tensor_slices(x, y).shuffle(96, 4).batch(16), data::random(21))
            .map([](std::pair<LabeledData, uint64_t> batch_and_seed) {
              auto& [batch, seed] = batch_and_seed;
              Rng rng(seed);
              for (float& value : batch.x.values()) value += rng.uniform(-0.1f, 0.1f);
              return std::move(batch);
            });
      },
      {});
  CHECK(seeded.resumed == seeded.whole);
  // A map that keeps its own generator restarts it, and so trains on other noise.
  const WholeAndResumed own_generator = whole_and_resumed(
      [&] {
        auto rng = std::make_shared<Rng>(21);
        return data::from_tensor_slices(x, y).shuffle(96, 4).batch(16).map([rng](LabeledData batch) {
          for (float& value : batch.x.values()) value += rng->uniform(-0.1f, 0.1f);
          return batch;
        });
      },
      {});
  CHECK(own_generator.resumed != own_generator.whole);
}
