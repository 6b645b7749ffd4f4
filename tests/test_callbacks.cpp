// Tests of the callbacks fit() drives: EarlyStopping (Keras's semantics for patience, mode,
// min_delta, baseline, start_from_epoch and restore_best_weights), History, and a user's own
// callback stopping training.
//
// EarlyStopping's decisions are checked twice: with monitored values fed to it directly, epoch by
// epoch, so each sequence is chosen by hand; and inside a real fit() of a tiny model (Dense(1) on
// 8 samples), where the monitored values come from training.
#include "kiln/callbacks.hpp"

#include "kiln/error.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/losses.hpp"
#include "kiln/metrics.hpp"
#include "kiln/model.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/random.hpp"

#include <doctest/doctest.h>

#include "stream_capture.hpp"

#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using kiln::testing::StreamCapture;

using kiln::Activation;
using kiln::History;
using kiln::LabeledData;
using kiln::Logs;
using kiln::Sequential;
using kiln::Shape;
using kiln::Tensor;
using kiln::callbacks::EarlyStopping;
using kiln::callbacks::EarlyStoppingOptions;

// Dense(1) on one feature, compiled with MSE and SGD; the seed fixes the initial weights.
std::vector<kiln::Shared<kiln::Layer>> seeded_dense(uint64_t seed) {
  kiln::set_random_seed(seed);
  return {kiln::layers::Dense(1, Activation::Linear, /*input_dim=*/1)};
}

struct TinyModel {
  Sequential model;
  Tensor x{Shape{8, 1}, {0.0f, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f}};
  Tensor y{Shape{8, 1}, {0, 0, 0, 0, 1, 1, 1, 1}};
  Tensor x_validation{Shape{4, 1}, {0.1f, 0.9f, 0.3f, 0.7f}};
  Tensor y_validation{Shape{4, 1}, {0, 1, 0, 1}};

  explicit TinyModel(uint64_t seed = 1, float learning_rate = 0.1f) : model(seeded_dense(seed)) {
    model.compile(kiln::optimizers::SGD(learning_rate), kiln::losses::MeanSquaredError(), {kiln::metrics::Accuracy()});
  }
  LabeledData validation() const { return {x_validation, y_validation}; }
};

// Feeds EarlyStopping one monitored value per epoch, as fit() would, after setting the model's
// weights to the epoch's number (so restored weights tell which epoch they came from).
// Returns the epoch after which training stopped, or -1 if it ran through.
int feed(EarlyStopping& early_stopping, Sequential& model, const std::string& monitor, const std::vector<double>& values) {
  const size_t arena_size = model.get_weights().size();
  early_stopping.set_model(&model);
  model.stop_training = false;
  early_stopping.on_train_begin({});
  int stopped_after = -1;
  for (int epoch = 0; epoch < static_cast<int>(values.size()); ++epoch) {
    model.set_weights(std::vector<float>(arena_size, static_cast<float>(epoch)));
    early_stopping.on_epoch_end(epoch, Logs{{"loss", 0.25}, {monitor, values[static_cast<size_t>(epoch)]}});
    if (model.stop_training) {
      stopped_after = epoch;
      break;
    }
  }
  early_stopping.on_train_end({});
  early_stopping.set_model(nullptr);
  return stopped_after;
}

bool weights_all_equal(const Sequential& model, float value) {
  for (float w : model.get_weights()) {
    if (w != value) return false;
  }
  return true;
}


// Counts fit()'s calls, snapshots the weights at each epoch's end, and can stop training.
class Recorder : public kiln::Callback {
 public:
  int stop_after_epoch = -1;
  int train_begins = 0, train_ends = 0, epoch_begins = 0, epoch_ends = 0;
  int64_t batch_begins = 0, batch_ends = 0;
  kiln::TrainingParams seen_params;
  std::vector<std::vector<float>> weights_at_epoch_end;

  void on_train_begin(const Logs&) override {
    ++train_begins;
    seen_params = params();
  }
  void on_train_end(const Logs&) override { ++train_ends; }
  void on_epoch_begin(int, const Logs&) override { ++epoch_begins; }
  void on_train_batch_begin(int64_t, const Logs&) override { ++batch_begins; }
  void on_train_batch_end(int64_t, const Logs&) override { ++batch_ends; }
  void on_epoch_end(int epoch, const Logs&) override {
    ++epoch_ends;
    weights_at_epoch_end.push_back(model().get_weights());
    if (epoch == stop_after_epoch) model().stop_training = true;
  }
  Sequential& attached_model() const { return model(); }
};

}  // namespace

// ---- EarlyStopping, fed values by hand -----------------------------------------------------------

TEST_CASE("EarlyStopping: stops once the monitored value has not improved for `patience` epochs") {
  TinyModel tiny;
  // val_loss 1.0, 0.8 (best), 0.9 (wait 1), 0.85 (wait 2 = patience): stop after epoch 3.
  EarlyStopping patient({.monitor = "val_loss", .patience = 2});
  CHECK(feed(patient, tiny.model, "val_loss", {1.0, 0.8, 0.9, 0.85, 0.7}) == 3);
  CHECK(patient.stopped_epoch() == 3);
  CHECK(patient.best_epoch() == 1);

  // Patience 0 stops at the first epoch without improvement.
  EarlyStopping impatient({.monitor = "val_loss", .patience = 0});
  CHECK(feed(impatient, tiny.model, "val_loss", {1.0, 0.9, 0.95, 0.5}) == 2);
  CHECK(impatient.stopped_epoch() == 2);

  // An improvement resets the count: 1.0, 1.1 (wait 1), 0.9 (reset), 1.0 (wait 1), 0.8 ... never 2 in a row.
  EarlyStopping reset({.monitor = "val_loss", .patience = 2});
  CHECK(feed(reset, tiny.model, "val_loss", {1.0, 1.1, 0.9, 1.0, 0.8, 0.85}) == -1);
  CHECK(reset.stopped_epoch() == 0);
  CHECK(reset.best_epoch() == 4);
}

TEST_CASE("EarlyStopping: mode auto maximises accuracies and minimises losses") {
  TinyModel tiny;
  const std::vector<double> rising = {0.5, 0.6, 0.7, 0.8};
  EarlyStopping accuracy({.monitor = "val_accuracy", .patience = 0});
  CHECK(feed(accuracy, tiny.model, "val_accuracy", rising) == -1);
  EarlyStopping loss({.monitor = "val_loss", .patience = 0});
  CHECK(feed(loss, tiny.model, "val_loss", rising) == 1);
  // An explicit mode overrides the name.
  EarlyStopping accuracy_as_min({.monitor = "val_accuracy", .patience = 0, .mode = "min"});
  CHECK(feed(accuracy_as_min, tiny.model, "val_accuracy", rising) == 1);
  EarlyStopping loss_as_max({.monitor = "val_loss", .patience = 0, .mode = "max"});
  CHECK(feed(loss_as_max, tiny.model, "val_loss", rising) == -1);
  // A falling accuracy stops an auto-mode monitor.
  EarlyStopping falling({.monitor = "val_accuracy", .patience = 1});
  CHECK(feed(falling, tiny.model, "val_accuracy", {0.9, 0.8, 0.7, 0.6}) == 1);
  CHECK(falling.best_epoch() == 0);
}

TEST_CASE("EarlyStopping: min_delta is a margin an improvement must beat") {
  TinyModel tiny;
  const std::vector<double> creeping = {1.0, 0.95, 0.9, 0.85};
  EarlyStopping without_margin({.monitor = "val_loss", .patience = 1});
  CHECK(feed(without_margin, tiny.model, "val_loss", creeping) == -1);
  // 0.95 + 0.1 is not below 1.0: no improvement, stop after epoch 1.
  EarlyStopping with_margin({.monitor = "val_loss", .min_delta = 0.1, .patience = 1});
  CHECK(feed(with_margin, tiny.model, "val_loss", creeping) == 1);
  CHECK(with_margin.best_epoch() == 0);
  // Maximising: 0.52 - 0.05 is not above 0.5.
  EarlyStopping accuracy_margin({.monitor = "val_accuracy", .min_delta = 0.05, .patience = 1});
  CHECK(feed(accuracy_margin, tiny.model, "val_accuracy", {0.5, 0.52, 0.54}) == 1);
}

TEST_CASE("EarlyStopping: restore_best_weights puts back the best epoch's weights when it stops") {
  TinyModel tiny;
  // Best at epoch 1; stops after epoch 3 (patience 2). feed() set the weights to 1.0 at epoch 1.
  const std::vector<double> values = {1.0, 0.5, 0.7, 0.8, 0.1};
  EarlyStopping restoring({.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
  REQUIRE(feed(restoring, tiny.model, "val_loss", values) == 3);
  CHECK(restoring.best_epoch() == 1);
  CHECK(weights_all_equal(tiny.model, 1.0f));

  EarlyStopping keeping({.monitor = "val_loss", .patience = 2});
  REQUIRE(feed(keeping, tiny.model, "val_loss", values) == 3);
  CHECK(weights_all_equal(tiny.model, 3.0f));  // the last epoch's weights stay
}

TEST_CASE("EarlyStopping: restore_best_weights also applies when training runs all its epochs") {
  // As in Keras 3: patience never runs out, but the last epochs were worse than epoch 1, so the
  // model ends on epoch 1's weights.
  TinyModel tiny;
  EarlyStopping restoring({.monitor = "val_loss", .patience = 5, .restore_best_weights = true});
  REQUIRE(feed(restoring, tiny.model, "val_loss", {1.0, 0.5, 0.7, 0.8}) == -1);
  CHECK(restoring.stopped_epoch() == 0);
  CHECK(restoring.best_epoch() == 1);
  CHECK(weights_all_equal(tiny.model, 1.0f));
}

TEST_CASE("EarlyStopping: a baseline not beaten does not reset the patience count") {
  TinyModel tiny;
  // 1.0 is an improvement over +inf but not over the baseline 0.5, so the count is not reset:
  // 1.1 makes it 2 = patience, and training stops after epoch 1.
  EarlyStopping with_baseline({.monitor = "val_loss", .patience = 2, .baseline = 0.5, .has_baseline = true});
  CHECK(feed(with_baseline, tiny.model, "val_loss", {1.0, 1.1, 1.2}) == 1);
  EarlyStopping without_baseline({.monitor = "val_loss", .patience = 2});
  CHECK(feed(without_baseline, tiny.model, "val_loss", {1.0, 1.1, 1.2}) == 2);
  // A value that beats the baseline resets the count as usual.
  EarlyStopping beaten({.monitor = "val_loss", .patience = 2, .baseline = 0.5, .has_baseline = true});
  CHECK(feed(beaten, tiny.model, "val_loss", {0.4, 0.45, 0.42, 0.41}) == 2);
}

TEST_CASE("EarlyStopping: start_from_epoch ignores the first epochs") {
  TinyModel tiny;
  const std::vector<double> worsening = {1.0, 2.0, 3.0, 4.0, 5.0};
  EarlyStopping from_start({.monitor = "val_loss", .patience = 1});
  CHECK(feed(from_start, tiny.model, "val_loss", worsening) == 1);
  EarlyStopping warm_up({.monitor = "val_loss", .patience = 1, .start_from_epoch = 2});
  CHECK(feed(warm_up, tiny.model, "val_loss", worsening) == 3);
  CHECK(warm_up.best_epoch() == 2);
}

TEST_CASE("EarlyStopping: a monitor fit does not report warns and never stops") {
  TinyModel tiny;
  EarlyStopping missing({.monitor = "val_auc", .patience = 0});
  StreamCapture errors(std::cerr);
  const size_t arena_size = tiny.model.get_weights().size();
  missing.set_model(&tiny.model);
  missing.on_train_begin({});
  for (int epoch = 0; epoch < 3; ++epoch) {
    tiny.model.set_weights(std::vector<float>(arena_size, static_cast<float>(epoch)));
    missing.on_epoch_end(epoch, Logs{{"loss", 1.0 + epoch}, {"val_loss", 1.0 + epoch}});
  }
  CHECK_FALSE(tiny.model.stop_training);
  CHECK(missing.stopped_epoch() == 0);
  CHECK(errors.text().find("val_auc") != std::string::npos);
  CHECK(errors.text().find("val_loss") != std::string::npos);  // it lists what is available
}

TEST_CASE("EarlyStopping: verbose prints Keras's messages") {
  TinyModel tiny;
  StreamCapture out(std::cout);
  EarlyStopping verbose({.monitor = "val_loss", .patience = 1, .verbose = 1, .restore_best_weights = true});
  REQUIRE(feed(verbose, tiny.model, "val_loss", {1.0, 0.5, 0.6, 0.7}) == 2);
  CHECK(out.text() == "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n");
}

TEST_CASE("EarlyStopping: verbose, without an early stop, reports only the restore") {
  TinyModel tiny;
  StreamCapture out(std::cout);
  EarlyStopping verbose({.monitor = "val_loss", .patience = 5, .verbose = 1, .restore_best_weights = true});
  REQUIRE(feed(verbose, tiny.model, "val_loss", {1.0, 0.5, 0.6}) == -1);
  CHECK(out.text() == "Restoring model weights from the end of the best epoch: 2.\n");

  EarlyStopping no_restore({.monitor = "val_loss", .patience = 5, .verbose = 1});
  StreamCapture nothing(std::cout);
  REQUIRE(feed(no_restore, tiny.model, "val_loss", {1.0, 0.5, 0.6}) == -1);
  CHECK(nothing.text().empty());
}

TEST_CASE("EarlyStopping: bad options are ValueErrors") {
  CHECK_THROWS_AS(EarlyStopping({.mode = "maximum"}), kiln::ValueError);
  CHECK_THROWS_AS(EarlyStopping({.patience = -1}), kiln::ValueError);
  CHECK_NOTHROW(EarlyStopping({.mode = "max"}));
}

// ---- EarlyStopping inside fit -------------------------------------------------------------------

TEST_CASE("EarlyStopping in fit: stops after patience epochs without improvement") {
  TinyModel tiny;
  // A min_delta no real change can beat: epoch 0 is the best, and patience 2 ends training after epoch 2.
  auto early_stopping = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.min_delta = 1e9, .patience = 2});
  const History history = tiny.model.fit(tiny.x, tiny.y,
                                         {.batch_size = 4,
                                          .epochs = 20,
                                          .verbose = 0,
                                          .callbacks = {early_stopping},
                                          .validation_data = tiny.validation()});
  CHECK(history.epoch == std::vector<int>{0, 1, 2});
  CHECK(history.history.at("val_loss").size() == 3);
  CHECK(early_stopping->stopped_epoch() == 2);
  CHECK(early_stopping->best_epoch() == 0);
}

TEST_CASE("EarlyStopping in fit: the direction of the monitored value matters") {
  // Full-batch gradient descent with a small step lowers the training loss every epoch, so a
  // minimising monitor sees steady improvement and a maximising one sees none.
  TinyModel minimising(3, 0.05f);
  auto on_loss = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.monitor = "loss", .patience = 0});
  const History ran = minimising.model.fit(minimising.x, minimising.y,
                                           {.batch_size = 8, .epochs = 5, .verbose = 0, .callbacks = {on_loss}, .shuffle = false});
  const std::vector<double>& losses = ran.history.at("loss");
  REQUIRE(losses.size() == 5);
  for (size_t e = 1; e < losses.size(); ++e) CHECK(losses[e] < losses[e - 1]);
  CHECK(on_loss->stopped_epoch() == 0);

  TinyModel maximising(3, 0.05f);
  auto on_loss_as_max =
      std::make_shared<EarlyStopping>(EarlyStoppingOptions{.monitor = "loss", .patience = 0, .mode = "max"});
  const History stopped = maximising.model.fit(
      maximising.x, maximising.y,
      {.batch_size = 8, .epochs = 5, .verbose = 0, .callbacks = {on_loss_as_max}, .shuffle = false});
  CHECK(stopped.epoch.size() == 2);
  CHECK(on_loss_as_max->stopped_epoch() == 1);
}

TEST_CASE("EarlyStopping in fit: restore_best_weights leaves the best epoch's weights") {
  TinyModel tiny;
  auto recorder = std::make_shared<Recorder>();
  auto early_stopping = std::make_shared<EarlyStopping>(
      EarlyStoppingOptions{.min_delta = 1e9, .patience = 2, .restore_best_weights = true});
  tiny.model.fit(tiny.x, tiny.y,
                 {.batch_size = 4,
                  .epochs = 20,
                  .verbose = 0,
                  .callbacks = {recorder, early_stopping},
                  .validation_data = tiny.validation()});
  REQUIRE(recorder->weights_at_epoch_end.size() == 3);
  CHECK(recorder->weights_at_epoch_end[0] != recorder->weights_at_epoch_end[2]);  // training did move them
  CHECK(tiny.model.get_weights() == recorder->weights_at_epoch_end[0]);

  // Patience that never runs out: training uses all 4 epochs, and still ends on epoch 0's weights.
  TinyModel full_run;
  auto recorder_full = std::make_shared<Recorder>();
  auto restoring_at_end = std::make_shared<EarlyStopping>(
      EarlyStoppingOptions{.min_delta = 1e9, .patience = 100, .restore_best_weights = true});
  full_run.model.fit(full_run.x, full_run.y,
                     {.batch_size = 4,
                      .epochs = 4,
                      .verbose = 0,
                      .callbacks = {recorder_full, restoring_at_end},
                      .validation_data = full_run.validation()});
  REQUIRE(recorder_full->weights_at_epoch_end.size() == 4);
  CHECK(restoring_at_end->stopped_epoch() == 0);
  CHECK(full_run.model.get_weights() == recorder_full->weights_at_epoch_end[0]);
  CHECK(full_run.model.get_weights() != recorder_full->weights_at_epoch_end[3]);

  TinyModel without_restore;
  auto recorder_2 = std::make_shared<Recorder>();
  auto plain = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.min_delta = 1e9, .patience = 2});
  without_restore.model.fit(without_restore.x, without_restore.y,
                            {.batch_size = 4,
                             .epochs = 20,
                             .verbose = 0,
                             .callbacks = {recorder_2, plain},
                             .validation_data = without_restore.validation()});
  REQUIRE(recorder_2->weights_at_epoch_end.size() == 3);
  CHECK(without_restore.model.get_weights() == recorder_2->weights_at_epoch_end[2]);
}

// ---- History ------------------------------------------------------------------------------------

TEST_CASE("History: one entry per epoch for the loss, each metric, their val_ twins, and the epoch time") {
  TinyModel tiny;
  const History history = tiny.model.fit(
      tiny.x, tiny.y, {.batch_size = 4, .epochs = 3, .verbose = 0, .validation_data = tiny.validation()});
  CHECK(history.epoch == std::vector<int>{0, 1, 2});
  REQUIRE(history.epoch_seconds.size() == 3);
  for (double seconds : history.epoch_seconds) CHECK(seconds >= 0.0);
  CHECK(history.history.size() == 5);
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "input_wait"}) {
    CAPTURE(key);
    REQUIRE(history.history.count(key) == 1);
    CHECK(history.history.at(key).size() == 3);
  }
  for (double accuracy : history.history.at("val_accuracy")) {
    CHECK(accuracy >= 0.0);
    CHECK(accuracy <= 1.0);
  }
  // The last epoch's validation values are those of the trained model on the validation data.
  const Logs evaluated = tiny.model.evaluate(tiny.x_validation, tiny.y_validation, {.verbose = 0});
  CHECK(history.history.at("val_loss").back() == doctest::Approx(evaluated.at("loss")).epsilon(1e-6));
  CHECK(history.history.at("val_accuracy").back() == doctest::Approx(evaluated.at("accuracy")));
}

TEST_CASE("History: without validation there are no val_ entries; validation_split adds them") {
  TinyModel tiny;
  const History plain = tiny.model.fit(tiny.x, tiny.y, {.batch_size = 4, .epochs = 2, .verbose = 0});
  CHECK(plain.history.size() == 3);  // loss, accuracy, input_wait
  CHECK(plain.history.at("loss").size() == 2);
  CHECK(plain.history.at("accuracy").size() == 2);
  CHECK(plain.history.count("val_loss") == 0);

  TinyModel split;
  const History with_split =
      split.model.fit(split.x, split.y, {.batch_size = 4, .epochs = 2, .verbose = 0, .validation_split = 0.25});
  CHECK(with_split.history.at("val_loss").size() == 2);
  CHECK(with_split.history.at("val_accuracy").size() == 2);
}

TEST_CASE("History: a full-batch epoch's loss is the loss of the weights it started from") {
  // With one batch per epoch, the epoch's reported loss is the model's loss before that epoch's
  // update: for epoch 0, the initial weights, which evaluate() can measure independently.
  TinyModel tiny(5, 0.1f);
  const Logs before = tiny.model.evaluate(tiny.x, tiny.y, {.verbose = 0});
  const History history = tiny.model.fit(tiny.x, tiny.y, {.batch_size = 8, .epochs = 1, .verbose = 0, .shuffle = false});
  CHECK(history.history.at("loss").at(0) == doctest::Approx(before.at("loss")).epsilon(1e-6));
}

// ---- a user's callback --------------------------------------------------------------------------

TEST_CASE("Callback: setting model().stop_training ends fit after that epoch") {
  TinyModel tiny;
  auto stopper = std::make_shared<Recorder>();
  stopper->stop_after_epoch = 1;
  const History history = tiny.model.fit(tiny.x, tiny.y, {.batch_size = 4, .epochs = 10, .verbose = 0, .callbacks = {stopper}});
  CHECK(history.epoch == std::vector<int>{0, 1});
  CHECK(stopper->train_begins == 1);
  CHECK(stopper->train_ends == 1);
  CHECK(stopper->epoch_begins == 2);
  CHECK(stopper->epoch_ends == 2);
  CHECK(stopper->batch_begins == 4);  // 8 samples in batches of 4: 2 steps per epoch
  CHECK(stopper->batch_ends == 4);
  CHECK(stopper->seen_params.epochs == 10);
  CHECK(stopper->seen_params.steps_per_epoch == 2);
  CHECK(stopper->seen_params.verbose == 0);

  // The next fit starts afresh: stop_training is reset, and all epochs run.
  const History again = tiny.model.fit(tiny.x, tiny.y, {.batch_size = 4, .epochs = 3, .verbose = 0});
  CHECK(again.epoch.size() == 3);

  // Outside fit() a callback has no model.
  CHECK_THROWS_AS(stopper->attached_model(), kiln::Error);
}
