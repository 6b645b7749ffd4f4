// kiln/callbacks/learning_rate.hpp — callbacks that set the optimizer's learning rate between
// epochs: LearningRateScheduler (a function of the epoch) and ReduceLROnPlateau (cut it when a
// monitored value stops improving), with Keras's arguments, defaults and messages. Both add the
// rate to the epoch's logs as "learning_rate", as Keras 3 does. They need an optimizer built with
// a fixed rate: one driven by a schedule (schedules.hpp) refuses to be set.
#pragma once

#include "kiln/callbacks.hpp"
#include "kiln/callbacks/monitor.hpp"

#include <functional>
#include <string>

namespace kiln::callbacks {

// At the start of each epoch: learning rate = schedule(epoch, current rate), epochs from 0.
class LearningRateScheduler : public Callback {
 public:
  using Schedule = std::function<double(int epoch, double learning_rate)>;
  explicit LearningRateScheduler(Schedule schedule, int verbose = 0);
  void on_epoch_begin(int epoch, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  Schedule schedule_;
  int verbose_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;  // new rate = rate * factor, and no lower than min_lr
  int patience = 10;    // epochs without improvement before the rate is cut
  int verbose = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;  // epochs to wait after a cut before counting again
  double min_lr = 0.0;
};

class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  ReduceLROnPlateauOptions options_;
  Monitor monitor_;
  double best_ = 0.0;
  int wait_ = 0;
  int cooldown_counter_ = 0;
};

}  // namespace kiln::callbacks
