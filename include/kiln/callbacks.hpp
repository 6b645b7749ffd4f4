// kiln/callbacks.hpp — hooks into fit(): History, the progress bar, EarlyStopping, TerminateOnNaN.
// More in callbacks/: ModelCheckpoint, CSVLogger, LearningRateScheduler, ReduceLROnPlateau,
// LambdaCallback.
//
// fit() calls every callback on the training thread, in the order given, at the start and end of
// training, of each epoch and of each batch (and evaluate / predict their own hooks), passing the running logs ("loss", "accuracy", and
// at epoch end "val_loss", ...). A callback reaches the model through model() — to stop training
// (model().stop_training = true) or to save or restore weights. Epochs are counted from 0 here and
// printed from 1, as in Keras.
#pragma once

#include "kiln/callbacks/monitor.hpp"
#include "kiln/logs.hpp"

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

class Sequential;
class ProgressBar;

// What fit() is about to do, for callbacks that need it (the progress bar's step count).
struct TrainingParams {
  int epochs = 0;
  int64_t steps_per_epoch = 0;
  int verbose = 0;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(const Logs& /*logs*/) {}
  virtual void on_train_end(const Logs& /*logs*/) {}
  virtual void on_epoch_begin(int /*epoch*/, const Logs& /*logs*/) {}
  virtual void on_epoch_end(int /*epoch*/, const Logs& /*logs*/) {}
  virtual void on_train_batch_begin(int64_t /*step*/, const Logs& /*logs*/) {}
  virtual void on_train_batch_end(int64_t /*step*/, const Logs& /*logs*/) {}
  // evaluate(), and fit's validation: the running "loss" and metrics, as in training.
  virtual void on_test_begin(const Logs& /*logs*/) {}
  virtual void on_test_end(const Logs& /*logs*/) {}
  virtual void on_test_batch_begin(int64_t /*step*/, const Logs& /*logs*/) {}
  virtual void on_test_batch_end(int64_t /*step*/, const Logs& /*logs*/) {}
  // predict() (on arrays): empty logs, where Keras passes the outputs.
  virtual void on_predict_begin(const Logs& /*logs*/) {}
  virtual void on_predict_end(const Logs& /*logs*/) {}
  virtual void on_predict_batch_begin(int64_t /*step*/, const Logs& /*logs*/) {}
  virtual void on_predict_batch_end(int64_t /*step*/, const Logs& /*logs*/) {}

  // Set by fit() before on_train_begin.
  void set_model(Sequential* model) { model_ = model; }
  void set_params(const TrainingParams& params) { params_ = params; }

 protected:
  Sequential& model() const;
  const TrainingParams& params() const { return params_; }
  // Adds an entry to the logs fit() is passing round, so the callbacks after this one, the
  // progress bar and History see it (Keras's callbacks add "learning_rate" so). fit's logs are
  // its own, changeable object; they reach callbacks as const only so that reading is the rule.
  static void add_to_logs(const Logs& logs, const std::string& key, double value) { const_cast<Logs&>(logs)[key] = value; }

 private:
  Sequential* model_ = nullptr;
  TrainingParams params_;
};

// Records each epoch's logs: history["loss"][e], history["val_accuracy"][e], ... and the wall
// time of each epoch. fit() returns one.
class History : public Callback {
 public:
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;
  std::vector<double> epoch_seconds;

  void on_train_begin(const Logs& logs) override;
  void on_epoch_begin(int epoch_index, const Logs& logs) override;
  void on_epoch_end(int epoch_index, const Logs& logs) override;

 private:
  double epoch_start_seconds_ = 0.0;
};

namespace callbacks {

// Keras's ProgbarLogger: "Epoch 3/10" then the progress bar, redrawn in place on a terminal
// (verbose 1) or one summary line per epoch (verbose 2). fit() adds it when verbose > 0.
class ProgbarLogger : public Callback {
 public:
  explicit ProgbarLogger(std::ostream& out);
  ~ProgbarLogger() override;
  void on_epoch_begin(int epoch, const Logs& logs) override;
  void on_train_batch_end(int64_t step, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  std::ostream& out_;
  std::unique_ptr<ProgressBar> bar_;
  int64_t steps_seen_ = 0;
};

// Stops training when a monitored value stops improving (Keras's EarlyStopping, same arguments
// and defaults). With restore_best_weights, the weights of the best epoch are put back at the end.
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  int verbose = 0;
  std::string mode = "auto";  // "min", "max", or "auto": max for names with "acc", else min
  double baseline = 0.0;
  bool has_baseline = false;
  bool restore_best_weights = false;
  int start_from_epoch = 0;
};

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

  int stopped_epoch() const { return stopped_epoch_; }  // 0 when training was not stopped
  int best_epoch() const { return best_epoch_; }

 private:
  EarlyStoppingOptions options_;
  Monitor monitor_;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  int best_epoch_ = 0;
  double best_ = 0.0;
  std::vector<float> best_weights_;
};

// Ends training at the first batch whose loss is NaN or infinite, printing Keras's
// "Batch N: Invalid loss, terminating training"; fit then returns the history so far instead of
// throwing. Either way that batch's step is not applied (see Sequential::train_on_batch).
class TerminateOnNaN : public Callback {
 public:
  void on_train_batch_end(int64_t step, const Logs& logs) override;
};

}  // namespace callbacks
}  // namespace kiln
