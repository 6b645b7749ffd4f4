// bench/common/flat_json.hpp — reads a peer script's JSON figures into flat maps keyed by path.
//
// {"io": {"workers": [{"epoch_s": 2.1}], "name": "x"}} gives numbers["io.workers.0.epoch_s"] = 2.1
// and texts["io.name"] = "x"; booleans and null are skipped. The benchmarks look figures up by
// such paths, which keeps their tables short to write.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::bench {

struct FlatJson {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> texts;
};

class FlatJsonReader {
 public:
  // Throws std::runtime_error, with the parser's reason, when the text is not JSON.
  static FlatJson read(std::string_view text) {
    nlohmann::json flat;
    try {
      flat = nlohmann::json::parse(text).flatten();  // keys become JSON pointers: "/io/workers/0/epoch_s"
    } catch (const nlohmann::json::exception& error) {
      throw std::runtime_error(std::string("JSON: ") + error.what());
    }
    FlatJson result;
    for (const auto& [pointer, value] : flat.items()) {
      std::string path = pointer.substr(1);
      std::replace(path.begin(), path.end(), '/', '.');
      if (value.is_number()) {
        result.numbers[path] = value.get<double>();
      } else if (value.is_string()) {
        result.texts[path] = value.get<std::string>();
      }
    }
    return result;
  }
};

}  // namespace kiln::bench
