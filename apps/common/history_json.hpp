// apps/common/history_json.hpp — writes a training History (plus test results) as JSON, the
// format every kiln app's --history-json produces:
//   {"loss":[...],"accuracy":[...],"val_loss":[...],"val_accuracy":[...],
//    "test_loss":x,"test_accuracy":x,"epoch_seconds":[...]}
#pragma once

#include <kiln/callbacks.hpp>
#include <kiln/error.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/logs.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::apps {

inline std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN or infinity
  std::ostringstream text;
  text.precision(10);
  text << value;
  return text.str();
}

inline std::string json_array(const std::vector<double>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + json_number(values[i]);
  return text + "]";
}

// test_logs entries are written as "test_<name>".
inline void write_history_json(const std::string& path, const History& history, const Logs& test_logs) {
  std::string json = "{";
  bool first = true;
  auto add = [&](const std::string& key, const std::string& value) {
    json += (first ? "\"" : ",\"") + key + "\":" + value;
    first = false;
  };
  for (const auto& [name, values] : history.history) add(name, json_array(values));
  for (const auto& [name, value] : test_logs) add("test_" + name, json_number(value));
  add("epoch_seconds", json_array(history.epoch_seconds));
  json += "}\n";
  io::write_file_atomically(path, json);
}

}  // namespace kiln::apps
