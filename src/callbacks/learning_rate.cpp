// LearningRateScheduler and ReduceLROnPlateau, following Keras 3's callbacks step by step.
#include "kiln/callbacks/learning_rate.hpp"

#include "kiln/callbacks/python_format.hpp"

#include "kiln/error.hpp"
#include "kiln/model.hpp"
#include "kiln/optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>

namespace kiln::callbacks {
LearningRateScheduler::LearningRateScheduler(Schedule schedule, int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  if (!schedule_) throw ValueError("LearningRateScheduler needs a schedule function");
}

void LearningRateScheduler::on_epoch_begin(int epoch, const Logs&) {
  Optimizer& optimizer = model().optimizer();
  const double learning_rate = schedule_(epoch, optimizer.learning_rate());
  if (!std::isfinite(learning_rate) || !(learning_rate > 0.0)) {
    throw ValueError("LearningRateScheduler: the schedule gave " + python_float(learning_rate) + " for epoch " +
                     std::to_string(epoch) + "; a learning rate must be a positive number");
  }
  optimizer.set_learning_rate(static_cast<float>(learning_rate));
  if (verbose_ > 0) {
    std::cout << "\nEpoch " << epoch + 1 << ": LearningRateScheduler setting learning rate to " << python_float(learning_rate)
              << ".\n";
  }
}

void LearningRateScheduler::on_epoch_end(int, const Logs& logs) {
  add_to_logs(logs, "learning_rate", model().optimizer().learning_rate());
}

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options)
    : options_(std::move(options)), monitor_(options_.monitor, options_.mode, options_.min_delta, "ReduceLROnPlateau") {
  if (!(options_.factor < 1.0) || !(options_.factor >= 0.0)) {
    throw ValueError("ReduceLROnPlateau does not support a factor >= 1.0 (or below 0), got " + python_float(options_.factor));
  }
  if (options_.patience < 0 || options_.cooldown < 0) throw ValueError("ReduceLROnPlateau: patience and cooldown must be >= 0");
}

void ReduceLROnPlateau::on_train_begin(const Logs&) {
  best_ = monitor_.worst();
  wait_ = 0;
  cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, const Logs& logs) {
  Optimizer& optimizer = model().optimizer();
  add_to_logs(logs, "learning_rate", optimizer.learning_rate());
  const std::optional<double> current = monitor_.read(logs);
  if (!current) return;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (monitor_.improves(*current, best_)) {
    best_ = *current;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0) return;
  if (++wait_ < options_.patience) return;
  const double old_rate = optimizer.learning_rate();
  if (old_rate > options_.min_lr) {
    const double new_rate = std::max(old_rate * options_.factor, options_.min_lr);
    optimizer.set_learning_rate(static_cast<float>(new_rate));
    if (options_.verbose > 0) {
      std::cout << "\nEpoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to "
                << python_float(new_rate) << ".\n";
    }
    cooldown_counter_ = options_.cooldown;
    wait_ = 0;
  }
}

}  // namespace kiln::callbacks
