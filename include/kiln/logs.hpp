// kiln/logs.hpp — the metric values an epoch or a batch reports, by name ("loss", "val_accuracy").
//
// A sorted map, so every printout lists them in the same order Keras does (alphabetical,
// validation entries after the training ones because of their "val_" prefix being printed last).
#pragma once

#include <map>
#include <string>

namespace kiln {

using Logs = std::map<std::string, double>;

}  // namespace kiln
