// apps/common/history_json.hpp — writes a training History (plus test results) as JSON, the
// format every kiln app's --history-json produces:
//   {"loss":[...],"accuracy":[...],"val_loss":[...],"val_accuracy":[...],
//    "test_loss":x,"test_accuracy":x,"epoch_seconds":[...]}
// A NaN or infinite value (a diverged run) is written as null: JSON has no such numbers.
#pragma once

#include <kiln/callbacks.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/logs.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace kiln::apps {

// test_logs entries are written as "test_<name>".
inline void write_history_json(const std::string& path, const History& history, const Logs& test_logs) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const auto& [name, values] : history.history) json[name] = values;
  for (const auto& [name, value] : test_logs) json["test_" + name] = value;
  json["epoch_seconds"] = history.epoch_seconds;
  io::write_file_atomically(path, json.dump() + "\n");
}

}  // namespace kiln::apps
