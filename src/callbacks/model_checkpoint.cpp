// ModelCheckpoint, following Keras 3's: when to save, what to print, how the path is filled.
#include "kiln/callbacks/model_checkpoint.hpp"

#include "kiln/callbacks/python_format.hpp"
#include "kiln/distributed.hpp"
#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/model.hpp"

#include <cstdio>
#include <iostream>

namespace kiln::callbacks {
namespace {

std::string five_decimals(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.5f", value);
  return text;
}

}  // namespace

ModelCheckpoint::ModelCheckpoint(std::string filepath, ModelCheckpointOptions options)
    : filepath_(std::move(filepath)),
      options_(std::move(options)),
      monitor_(options_.monitor, options_.mode, 0.0, "ModelCheckpoint") {
  if (!options_.save_weights_only && !filepath_.ends_with(".kiln")) {
    throw ValueError("ModelCheckpoint: the file path must end in \".kiln\" (kiln's whole-model files), got '" +
                     filepath_ + "'; to save the weights alone, pass save_weights_only = true and a path ending in \".npz\"");
  }
  if (options_.save_weights_only && !filepath_.ends_with(".npz")) {
    throw ValueError("ModelCheckpoint: with save_weights_only, the file path must end in \".npz\" (kiln's weight files), got '" +
                     filepath_ + "'");
  }
  if (options_.save_freq < 0) throw ValueError("ModelCheckpoint: save_freq must be 0 (every epoch) or a number of batches");
  io::check_can_write(filepath_, "ModelCheckpoint");
}

void ModelCheckpoint::on_train_begin(const Logs&) {
  best_ = options_.initial_value_threshold.value_or(monitor_.worst());
  batches_since_save_ = 0;
}

void ModelCheckpoint::on_epoch_begin(int epoch, const Logs&) { current_epoch_ = epoch; }

void ModelCheckpoint::on_train_batch_end(int64_t batch, const Logs& logs) {
  if (options_.save_freq == 0) return;
  if (++batches_since_save_ < options_.save_freq) return;
  batches_since_save_ = 0;
  save(current_epoch_, batch, logs);
}

void ModelCheckpoint::on_epoch_end(int epoch, const Logs& logs) {
  if (options_.save_freq == 0) save(epoch, std::nullopt, logs);
}

void ModelCheckpoint::save(int epoch, std::optional<int64_t> batch, const Logs& logs) {
  Logs values = logs;
  values["epoch"] = epoch + 1;
  if (batch) values["batch"] = static_cast<double>(*batch);
  const std::string path = format_path(filepath_, values);
  if (options_.save_best_only) {
    const auto found = logs.find(options_.monitor);
    if (found == logs.end()) {
      std::cerr << "Warning: Can save best model only with " << options_.monitor << " available, skipping.\n";
      return;
    }
    const double current = found->second;
    if (!monitor_.improves(current, best_)) {
      if (options_.verbose > 0 && distributed::is_chief()) {
        std::cout << "\nEpoch " << epoch + 1 << ": " << options_.monitor << " did not improve from " << five_decimals(best_) << "\n";
      }
      return;
    }
    if (options_.verbose > 0 && distributed::is_chief()) {
      std::cout << "\nEpoch " << epoch + 1 << ": " << options_.monitor << " improved from " << five_decimals(best_) << " to "
                << five_decimals(current) << ", saving model to " << path << "\n";
    }
    best_ = current;
  } else if (options_.verbose > 0 && distributed::is_chief()) {
    std::cout << "\nEpoch " << epoch + 1 << ": saving model to " << path << "\n";
  }
  last_saved_path_ = path;
  if (!distributed::is_chief()) return;  // one writer in a distributed fit: rank 0
  if (options_.save_weights_only) {
    model().save_weights(path);
  } else {
    model().save(path);
  }
}

}  // namespace kiln::callbacks
