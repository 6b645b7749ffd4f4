// Monitor: which way a watched log value improves, and reading it with Keras's warning.
#include "kiln/callbacks/monitor.hpp"

#include "kiln/error.hpp"

#include <cmath>
#include <iostream>

namespace kiln::callbacks {

Monitor::Monitor(std::string name, const std::string& mode, double min_delta, std::string owner)
    : name_(std::move(name)), owner_(std::move(owner)), min_delta_(std::abs(min_delta)) {
  if (mode == "max") {
    maximize_ = true;
  } else if (mode == "min") {
    maximize_ = false;
  } else if (mode == "auto") {
    maximize_ = name_.find("acc") != std::string::npos || name_.find("auc") != std::string::npos;
  } else {
    throw ValueError(owner_ + " mode must be 'auto', 'min' or 'max', got '" + mode + "'");
  }
}

bool Monitor::improves(double value, double reference) const {
  return maximize_ ? value - min_delta_ > reference : value + min_delta_ < reference;
}

double Monitor::worst() const { return maximize_ ? -INFINITY : INFINITY; }

std::optional<double> Monitor::read(const Logs& logs) const {
  const auto found = logs.find(name_);
  if (found != logs.end()) return found->second;
  std::string available;
  for (const auto& [key, value] : logs) available += (available.empty() ? "" : ", ") + key;
  // Keras warns and carries on rather than throwing away the training done so far.
  std::cerr << "Warning: " << owner_ << " monitors '" << name_ << "', which fit does not report (it reports: " << available
            << ")\n";
  return std::nullopt;
}

}  // namespace kiln::callbacks
