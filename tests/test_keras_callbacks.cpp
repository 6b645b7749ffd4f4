// Tests of the callbacks in kiln/callbacks/: ModelCheckpoint, CSVLogger, LearningRateScheduler,
// ReduceLROnPlateau, LambdaCallback, TerminateOnNaN, and Python's formats they print, each on a
// small deterministic fit.
#include <kiln/kiln.hpp>

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "stream_capture.hpp"
#include "temporary_directory.hpp"

#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln;
using kiln::testing::contains;
using kiln::testing::StreamCapture;
using kiln::testing::TemporaryDirectory;

namespace {

// 16 samples of 2 features, 2 classes, in batches of 4; the seed fixes the weights.
struct Tiny {
  Tensor x{Shape{16, 2}}, y{Shape{16}};
  Sequential model;
  explicit Tiny(uint64_t seed = 3, float learning_rate = 0.1f)
      : model((set_random_seed(seed), std::vector<Shared<Layer>>{layers::Dense(2, Activation::Softmax, 2)})) {
    for (int64_t i = 0; i < 16; ++i) {
      x.at(i, 0) = static_cast<float>(i % 4) - 1.5f;
      x.at(i, 1) = static_cast<float>(i % 3) - 1.0f;
      y[i] = static_cast<float>(i % 2);
    }
    model.compile(optimizers::SGD(learning_rate), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  }
  History fit(std::vector<Shared<Callback>> callbacks, int epochs = 3) {
    return model.fit(x, y, {.batch_size = 4, .epochs = epochs, .verbose = 0, .callbacks = std::move(callbacks), .shuffle = false});
  }
};

// Puts one chosen value per epoch into the logs under `name`, for the callbacks after it.
class ScriptedValue : public Callback {
 public:
  ScriptedValue(std::string name, std::vector<double> values) : name_(std::move(name)), values_(std::move(values)) {}
  void on_epoch_end(int epoch, const Logs& logs) override { add_to_logs(logs, name_, values_.at(static_cast<size_t>(epoch))); }

 private:
  std::string name_;
  std::vector<double> values_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("python_float prints what Python's repr() prints") {
  using callbacks::python_float;
  CHECK(python_float(0.1) == "0.1");
  CHECK(python_float(0.0001) == "0.0001");
  CHECK(python_float(0.00001) == "1e-05");
  CHECK(python_float(1.5e-7) == "1.5e-07");
  CHECK(python_float(2.0) == "2.0");
  CHECK(python_float(100.0) == "100.0");
  CHECK(python_float(-1.5) == "-1.5");
  CHECK(python_float(0.1 + 0.2) == "0.30000000000000004");
  CHECK(python_float(1e15) == "1000000000000000.0");
  CHECK(python_float(1e16) == "1e+16");
  CHECK(python_float(123456789012345678.0) == "1.2345678901234568e+17");
  CHECK(python_float(static_cast<double>(0.001f)) == "0.0010000000474974513");
  CHECK(python_float(NAN) == "nan");
  CHECK(python_float(-INFINITY) == "-inf");
}

TEST_CASE("format_path fills fields as Python's str.format does") {
  using callbacks::format_path;
  const Logs values = {{"epoch", 3}, {"val_loss", 0.123456}, {"accuracy", 0.5}};
  CHECK(format_path("w.{epoch:02d}-{val_loss:.4f}.npz", values) == "w.03-0.1235.npz");
  CHECK(format_path("{epoch}_{accuracy}.npz", values) == "3_0.5.npz");
  CHECK(format_path("{val_loss:.2e}", values) == "1.23e-01");
  CHECK(format_path("{{epoch}}", values) == "{epoch}");
  CHECK_THROWS_WITH_AS(format_path("{loss:.2f}.npz", values), doctest::Contains("no value named 'loss'"), ValueError);
  CHECK_THROWS_AS(format_path("{epoch:x}", values), ValueError);
  CHECK_THROWS_AS(format_path("{epoch", values), ValueError);
}

TEST_CASE("ModelCheckpoint keeps only improving files with save_best_only, named from the logs") {
  TemporaryDirectory directory;
  Tiny tiny;
  auto checkpoint = std::make_shared<callbacks::ModelCheckpoint>(
      directory.file("w-{epoch:02d}-{val_loss:.2f}.npz"),
      callbacks::ModelCheckpointOptions{.verbose = 1, .save_best_only = true, .save_weights_only = true});
  StreamCapture out(std::cout);
  tiny.fit({ScriptedValue("val_loss", {0.5, 0.4, 0.45, 0.3}), checkpoint}, 4);
  CHECK(directory.listing() == std::vector<std::string>{"w-01-0.50.npz", "w-02-0.40.npz", "w-04-0.30.npz"});
  CHECK(contains(out.text(), "Epoch 1: val_loss improved from inf to 0.50000, saving model to " + directory.file("w-01-0.50.npz")));
  CHECK(contains(out.text(), "Epoch 3: val_loss did not improve from 0.40000"));
  // The last file holds the weights at the end of epoch 4: the model's now.
  Tiny loaded(99);
  loaded.model.load_weights(checkpoint->last_saved_path());
  CHECK(loaded.model.get_weights() == tiny.model.get_weights());
}

TEST_CASE("ModelCheckpoint with save_freq saves every N batches, and refuses what it cannot write") {
  TemporaryDirectory directory;
  Tiny tiny;
  tiny.fit({callbacks::ModelCheckpoint(directory.file("e{epoch}-b{batch}.npz"),
                                       {.save_weights_only = true, .save_freq = 3})},
           2);  // 4 batches an epoch: saves after batches 3, 6 (epoch 2's second)
  CHECK(directory.listing() == std::vector<std::string>{"e1-b2.npz", "e2-b1.npz"});
  CHECK_THROWS_WITH_AS(callbacks::ModelCheckpoint(directory.file("m.npz")), doctest::Contains("save_weights_only = true"),
                       ValueError);
  CHECK_THROWS_WITH_AS(callbacks::ModelCheckpoint(directory.file("m.h5"), {.save_weights_only = true}),
                       doctest::Contains("must end in \".npz\""), ValueError);
  CHECK_THROWS_AS(callbacks::ModelCheckpoint(directory.file("missing/m.npz"), {.save_weights_only = true}), FileError);
}

TEST_CASE("CSVLogger writes Keras's header and one row per epoch, and appends without a second header") {
  TemporaryDirectory directory;
  const std::string path = directory.file("log.csv");
  Tiny tiny;
  const History history = tiny.fit({callbacks::CSVLogger(path)}, 2);
  std::vector<std::string> lines = lines_of(read_text(path));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "epoch,accuracy,input_wait,loss");
  CHECK(lines[1].starts_with("0,"));
  CHECK(lines[2].starts_with("1,"));
  // Each value reads back as exactly the History's.
  std::istringstream row(lines[2]);
  std::string field;
  std::getline(row, field, ',');
  for (const char* key : {"accuracy", "input_wait", "loss"}) {
    std::getline(row, field, ',');
    CHECK(std::stod(field) == history.history.at(key)[1]);
  }
  tiny.fit({callbacks::CSVLogger(path, ";", /*append=*/true)}, 1);
  lines = lines_of(read_text(path));
  REQUIRE(lines.size() == 4);
  CHECK(lines[3].starts_with("0;"));
  CHECK(directory.listing() == std::vector<std::string>{"log.csv"});
}

TEST_CASE("LearningRateScheduler sets the rate each epoch and logs it") {
  Tiny tiny;
  StreamCapture out(std::cout);
  const History history =
      tiny.fit({callbacks::LearningRateScheduler([](int epoch, double) { return 0.1 / (epoch + 1); }, /*verbose=*/1)}, 3);
  const std::vector<double>& rates = history.history.at("learning_rate");
  REQUIRE(rates.size() == 3);
  CHECK(rates[0] == static_cast<float>(0.1));
  CHECK(rates[1] == static_cast<float>(0.05));
  CHECK(rates[2] == static_cast<float>(0.1 / 3));
  CHECK(contains(out.text(), "Epoch 2: LearningRateScheduler setting learning rate to 0.05."));
  // The rate really drives the steps: a twin trained at 0.1 throughout ends elsewhere.
  Tiny fixed;
  fixed.fit({}, 3);
  CHECK(fixed.model.get_weights() != tiny.model.get_weights());
}

TEST_CASE("ReduceLROnPlateau cuts the rate after patience epochs, waits out its cooldown, and stops at min_lr") {
  Tiny tiny;
  // Improves twice, then stalls for good.
  const std::vector<double> score = {1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9};
  StreamCapture out(std::cout);
  const History history = tiny.fit({ScriptedValue("score", score),
                                    callbacks::ReduceLROnPlateau({.monitor = "score", .factor = 0.5, .patience = 2,
                                                                  .verbose = 1, .cooldown = 1, .min_lr = 0.01})},
                                   12);
  // Logged at each epoch's end before that epoch's cut: cuts at epochs 4, 6, 8 and 10 (from 1),
  // two epochs apart (a cooldown epoch, then the patience of 2 counting from it).
  const std::vector<double> expected = {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01, 0.01};
  const std::vector<double>& rates = history.history.at("learning_rate");
  REQUIRE(rates.size() == expected.size());
  for (size_t e = 0; e < expected.size(); ++e) {
    CAPTURE(e);
    CHECK(rates[e] == doctest::Approx(expected[e]).epsilon(1e-6));
  }
  CHECK(contains(out.text(), "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.05"));
  CHECK_THROWS_AS(callbacks::ReduceLROnPlateau({.factor = 1.0}), ValueError);
}

TEST_CASE("TerminateOnNaN ends training at the bad batch, which is not applied, and fit returns") {
  Tiny tiny, first_two_batches;
  tiny.x.at(9, 1) = NAN;  // in the third batch of four
  StreamCapture out(std::cout);
  const History history = tiny.fit({callbacks::TerminateOnNaN()}, 3);
  CHECK(contains(out.text(), "Batch 2: Invalid loss, terminating training"));
  CHECK(history.epoch.size() == 1);
  CHECK(std::isnan(history.history.at("loss")[0]));
  // The weights are those after the first two batches.
  first_two_batches.model.fit(Tensor(first_two_batches.x.slice_rows(0, 8)), Tensor(first_two_batches.y.slice_rows(0, 8)),
                              {.batch_size = 4, .epochs = 1, .verbose = 0, .shuffle = false});
  CHECK(tiny.model.get_weights() == first_two_batches.model.get_weights());
}

TEST_CASE("LambdaCallback calls the functions it was given, and skips the ones it was not") {
  Tiny tiny;
  int train_begins = 0, epoch_ends = 0, batch_ends = 0;
  std::vector<int> epochs_begun;
  tiny.fit({callbacks::LambdaCallback({
               .on_epoch_begin = [&](int epoch, const Logs&) { epochs_begun.push_back(epoch); },
               .on_epoch_end = [&](int, const Logs& logs) { epoch_ends += logs.count("loss") ? 1 : 0; },
               .on_train_batch_end = [&](int64_t, const Logs&) { ++batch_ends; },
               .on_train_begin = [&](const Logs&) { ++train_begins; },
           })},
           2);
  CHECK(train_begins == 1);
  CHECK(epochs_begun == std::vector<int>{0, 1});
  CHECK(epoch_ends == 2);
  CHECK(batch_ends == 8);
}

namespace {

// SIGINT's default action for the scope (doctest installs a handler of its own, and fit takes
// over SIGINT only from the default, as in a plain program).
class DefaultInterruptAction {
 public:
  DefaultInterruptAction() {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &saved_);
  }
  ~DefaultInterruptAction() { sigaction(SIGINT, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

}  // namespace

TEST_CASE("Ctrl-C during fit stops after the current batch, runs on_train_end, and returns the finished epochs") {
  const DefaultInterruptAction default_action;
  Tiny tiny, twin;
  bool train_ended = false;
  int epoch_now = 0;
  StreamCapture err(std::cerr);
  const History history = tiny.fit({callbacks::LambdaCallback({
                                       .on_epoch_begin = [&](int epoch, const Logs&) { epoch_now = epoch; },
                                       .on_train_batch_end =
                                           [&](int64_t batch, const Logs&) {
                                             if (epoch_now == 1 && batch == 1) std::raise(SIGINT);  // one Ctrl-C
                                           },
                                       .on_train_end = [&](const Logs&) { train_ended = true; },
                                   })},
                                   5);
  CHECK(history.epoch == std::vector<int>{0});  // epoch 2 was cut short, so it is not in the history
  CHECK(train_ended);
  CHECK(contains(err.text(), "Interrupted: training stopped after batch 2 of epoch 2"));
  // The weights are those after one epoch and two batches.
  twin.fit({}, 1);
  twin.model.fit(Tensor(twin.x.slice_rows(0, 8)), Tensor(twin.y.slice_rows(0, 8)),
                 {.batch_size = 4, .epochs = 1, .verbose = 0, .shuffle = false});
  CHECK(tiny.model.get_weights() == twin.model.get_weights());
  // After fit, SIGINT has its default action again.
  struct sigaction now {};
  sigaction(SIGINT, nullptr, &now);
  const bool default_again = now.sa_handler == SIG_DFL;
  CHECK(default_again);
  // A later fit is not stopped by the earlier Ctrl-C.
  CHECK(tiny.fit({}, 2).epoch.size() == 2);
}

TEST_CASE("a second Ctrl-C during fit ends the process at once") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const DefaultInterruptAction default_action;
    Tiny tiny;
    // Two presses during one batch: the first asks fit to stop after it, the second will not wait.
    tiny.fit({callbacks::LambdaCallback({.on_train_batch_end = [](int64_t, const Logs&) {
               std::raise(SIGINT);
               std::raise(SIGINT);
             }})},
             5);
    ::_exit(0);  // reached only if the second Ctrl-C did not end the process
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
}

namespace {

// Counts the evaluate and predict hooks it sees.
class HookCounter : public Callback {
 public:
  int test_begins = 0, test_ends = 0, test_batches = 0, predict_begins = 0, predict_ends = 0, predict_batches = 0;
  double last_test_loss = 0.0;
  void on_test_begin(const Logs&) override { ++test_begins; }
  void on_test_batch_end(int64_t, const Logs& logs) override {
    ++test_batches;
    last_test_loss = logs.at("loss");
  }
  void on_test_end(const Logs&) override { ++test_ends; }
  void on_predict_begin(const Logs&) override { ++predict_begins; }
  void on_predict_batch_end(int64_t, const Logs&) override { ++predict_batches; }
  void on_predict_end(const Logs&) override { ++predict_ends; }
};

}  // namespace

TEST_CASE("fit validates every validation_freq-th epoch, on validation_steps batches, with the test hooks") {
  Tiny tiny;
  auto counter = std::make_shared<HookCounter>();
  const auto validation = data::from_tensor_slices(tiny.x, tiny.y).batch(4);  // 4 batches
  const History history = tiny.model.fit(
      data::from_tensor_slices(tiny.x, tiny.y).batch(4),
      {.epochs = 4, .verbose = 0, .callbacks = {counter}, .validation_data = validation, .validation_freq = 2, .validation_steps = 3});
  CHECK(history.history.at("val_loss").size() == 2);  // after epochs 2 and 4
  CHECK(history.history.at("loss").size() == 4);
  CHECK(counter->test_begins == 2);
  CHECK(counter->test_ends == 2);
  CHECK(counter->test_batches == 6);  // 3 of the 4 batches, twice
  CHECK(counter->last_test_loss == history.history.at("val_loss").back());
  CHECK_THROWS_AS(tiny.model.fit(tiny.x, tiny.y, {.verbose = 0, .validation_freq = 0}), ValueError);
  CHECK_THROWS_AS(tiny.model.fit(tiny.x, tiny.y, {.verbose = 0, .validation_steps = -1}), ValueError);
}

TEST_CASE("evaluate takes steps and callbacks, predict callbacks, as Keras's do") {
  Tiny tiny;
  auto counter = std::make_shared<HookCounter>();
  const Logs two_batches = tiny.model.evaluate(tiny.x, tiny.y, {.batch_size = 4, .verbose = 0, .steps = 2, .callbacks = {counter}});
  CHECK(counter->test_batches == 2);
  CHECK(counter->test_begins == 1);
  const Logs first_eight = tiny.model.evaluate(Tensor(tiny.x.slice_rows(0, 8)), Tensor(tiny.y.slice_rows(0, 8)),
                                               {.batch_size = 4, .verbose = 0});
  CHECK(two_batches.at("loss") == first_eight.at("loss"));
  // A dataset that repeats forever can be evaluated for a number of steps.
  const Logs repeated = tiny.model.evaluate(data::from_tensor_slices(tiny.x, tiny.y).batch(4).repeat(), {.verbose = 0, .steps = 2});
  CHECK(repeated.at("loss") == first_eight.at("loss"));
  tiny.model.predict(tiny.x, {.batch_size = 5, .callbacks = {counter}});
  CHECK(counter->predict_begins == 1);
  CHECK(counter->predict_batches == 4);  // 16 rows in batches of 5
  CHECK(counter->predict_ends == 1);
}
