// kiln/callbacks/monitor.hpp — a value from fit's logs that a callback watches ("val_loss"), and
// which way counts as better: the rule EarlyStopping, ReduceLROnPlateau and ModelCheckpoint share.
#pragma once

#include "kiln/logs.hpp"

#include <optional>
#include <string>

namespace kiln::callbacks {

class Monitor {
 public:
  // mode "min", "max", or "auto": max for names with "acc" or "auc" in them, min otherwise.
  // `owner` names the callback in messages ("ReduceLROnPlateau").
  Monitor(std::string name, const std::string& mode, double min_delta, std::string owner);

  // True if `value` beats `reference` by more than min_delta, in the direction that is better.
  bool improves(double value, double reference) const;
  // The starting "best": +infinity when smaller is better, -infinity otherwise.
  double worst() const;
  // The value in `logs`, or nothing, with Keras's warning naming the values fit does report.
  std::optional<double> read(const Logs& logs) const;

  const std::string& name() const { return name_; }
  bool maximizes() const { return maximize_; }

 private:
  std::string name_, owner_;
  double min_delta_;
  bool maximize_ = false;
};

}  // namespace kiln::callbacks
