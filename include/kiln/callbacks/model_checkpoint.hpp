// kiln/callbacks/model_checkpoint.hpp — ModelCheckpoint: saves the model during fit, every
// epoch or every N batches, optionally only when a monitored value improved, with Keras's
// arguments, defaults and messages. `filepath` is a template filled as Python's str.format:
// "{epoch:02d}" (from 1, as printed), "{batch}", and any of the logs' names ("{val_loss:.4f}").
// Each file is written whole or not at all (io::AtomicFile).
//
// As Keras's default, the whole model goes to a .kiln file (model.save: architecture, weights,
// optimizer state; the path must end in ".kiln"); with save_weights_only, the weights alone go to
// an .npz (save_weights; the path must end in ".npz").
#pragma once

#include "kiln/callbacks.hpp"
#include "kiln/callbacks/monitor.hpp"

#include <optional>
#include <string>

namespace kiln::callbacks {

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  int verbose = 0;
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
  int64_t save_freq = 0;  // 0: every epoch ("epoch" in Keras); N: every N batches
  std::optional<double> initial_value_threshold;  // the value to beat for the first save
};

class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {});
  void on_train_begin(const Logs& logs) override;
  void on_epoch_begin(int epoch, const Logs& logs) override;
  void on_train_batch_end(int64_t batch, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

  const std::string& last_saved_path() const { return last_saved_path_; }  // "" before any save

 private:
  void save(int epoch, std::optional<int64_t> batch, const Logs& logs);

  std::string filepath_;
  ModelCheckpointOptions options_;
  Monitor monitor_;
  double best_ = 0.0;
  int current_epoch_ = 0;
  int64_t batches_since_save_ = 0;
  std::string last_saved_path_;
};

}  // namespace kiln::callbacks
