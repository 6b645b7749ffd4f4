// History, the progress-bar logger, EarlyStopping and TerminateOnNaN.
#include "kiln/callbacks.hpp"

#include "kiln/error.hpp"
#include "kiln/model.hpp"
#include "kiln/progress_bar.hpp"

#include <chrono>
#include <cmath>
#include <iostream>

namespace kiln {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Sequential& Callback::model() const {
  if (!model_) throw Error("this callback is not attached to a model: it is only usable inside fit()");
  return *model_;
}

// ---- History -------------------------------------------------------------------------------------

void History::on_train_begin(const Logs&) {
  history.clear();
  epoch.clear();
  epoch_seconds.clear();
}

void History::on_epoch_begin(int, const Logs&) { epoch_start_seconds_ = now_seconds(); }

void History::on_epoch_end(int epoch_index, const Logs& logs) {
  epoch.push_back(epoch_index);
  epoch_seconds.push_back(now_seconds() - epoch_start_seconds_);
  for (const auto& [name, value] : logs) history[name].push_back(value);
}

namespace callbacks {

// ---- ProgbarLogger -------------------------------------------------------------------------------

ProgbarLogger::ProgbarLogger(std::ostream& out) : out_(out) {}
ProgbarLogger::~ProgbarLogger() = default;

void ProgbarLogger::on_epoch_begin(int epoch, const Logs&) {
  if (params().epochs > 1) out_ << "Epoch " << epoch + 1 << "/" << params().epochs << "\n" << std::flush;
  const auto mode = params().verbose == 1 ? ProgressBar::Mode::InPlace : ProgressBar::Mode::EpochSummary;
  bar_ = std::make_unique<ProgressBar>(params().steps_per_epoch, mode, out_);
  steps_seen_ = 0;
}

void ProgbarLogger::on_train_batch_end(int64_t step, const Logs& logs) {
  steps_seen_ = step + 1;
  // The epoch's last step is drawn by on_epoch_end, together with the validation values.
  if (steps_seen_ < params().steps_per_epoch) bar_->update(steps_seen_, {logs.begin(), logs.end()});
}

void ProgbarLogger::on_epoch_end(int, const Logs& logs) {
  bar_->update(steps_seen_, {logs.begin(), logs.end()}, /*finalize=*/true);
  out_ << std::flush;
}

// ---- EarlyStopping -------------------------------------------------------------------------------

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)), monitor_(options_.monitor, options_.mode, options_.min_delta, "EarlyStopping") {
  if (options_.patience < 0) throw ValueError("EarlyStopping patience must be >= 0");
}

void EarlyStopping::on_train_begin(const Logs&) {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_ = monitor_.worst();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, const Logs& logs) {
  const std::optional<double> monitored = monitor_.read(logs);
  if (!monitored) return;
  if (epoch < options_.start_from_epoch) return;
  const double value = *monitored;
  if (options_.restore_best_weights && best_weights_.empty()) best_weights_ = model().get_weights();
  ++wait_;
  if (monitor_.improves(value, best_)) {
    best_ = value;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) best_weights_ = model().get_weights();
    // Keras resets patience only when the baseline, if any, is also beaten.
    if (!options_.has_baseline || monitor_.improves(value, options_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
  }
}

// As in Keras 3, the best weights are put back when training ends, whether or not it was stopped
// early: a run that used all its epochs but got worse at the end also ends on its best epoch.
void EarlyStopping::on_train_end(const Logs&) {
  if (stopped_epoch_ > 0 && options_.verbose > 0) std::cout << "Epoch " << stopped_epoch_ + 1 << ": early stopping\n";
  if (options_.restore_best_weights && !best_weights_.empty()) {
    if (options_.verbose > 0) {
      std::cout << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << ".\n";
    }
    model().set_weights(best_weights_);
  }
}

// ---- TerminateOnNaN ------------------------------------------------------------------------------

void TerminateOnNaN::on_train_batch_end(int64_t step, const Logs& logs) {
  const auto loss = logs.find("loss");
  if (loss == logs.end() || std::isfinite(loss->second)) return;
  std::cout << "Batch " << step << ": Invalid loss, terminating training\n";
  model().stop_training = true;
}

}  // namespace callbacks
}  // namespace kiln
