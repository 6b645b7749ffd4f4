// bench/common/flat_json.hpp — reads a peer script's JSON figures into flat maps keyed by path.
//
// {"io": {"workers": [{"epoch_s": 2.1}], "name": "x"}} gives numbers["io.workers.0.epoch_s"] = 2.1
// and texts["io.name"] = "x"; booleans and null are skipped. Enough for the figures a benchmark's
// peer prints, so the benchmarks need no JSON library; not a general JSON reader (string escapes
// other than \" and \\ are kept as written).
#pragma once

#include <cctype>
#include <cstdlib>
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
  // Throws std::runtime_error, naming the offset, when the text is not JSON.
  static FlatJson read(std::string_view text) {
    FlatJsonReader reader(text);
    reader.value("");
    reader.skip_space();
    if (reader.at_ < text.size()) reader.fail("text after the end of the document");
    return std::move(reader.result_);
  }

 private:
  explicit FlatJsonReader(std::string_view text) : text_(text) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(at_));
  }
  void skip_space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  char peek() {
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  static std::string child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

  std::string string() {
    expect('"');
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      if (text_[at_] == '\\' && at_ + 1 < text_.size()) ++at_;
      out += text_[at_++];
    }
    if (at_ >= text_.size()) fail("unterminated string");
    ++at_;
    return out;
  }

  void value(const std::string& path) {
    const char c = peek();
    if (c == '{') {
      ++at_;
      if (peek() == '}') return void(++at_);
      while (true) {
        const std::string key = string();
        expect(':');
        value(child(path, key));
        if (peek() != ',') break;
        ++at_;
      }
      expect('}');
    } else if (c == '[') {
      ++at_;
      if (peek() == ']') return void(++at_);
      int index = 0;
      while (true) {
        value(child(path, std::to_string(index++)));
        if (peek() != ',') break;
        ++at_;
      }
      expect(']');
    } else if (c == '"') {
      result_.texts[path] = string();
    } else if (text_.substr(at_, 4) == "true" || text_.substr(at_, 4) == "null") {
      at_ += 4;
    } else if (text_.substr(at_, 5) == "false") {
      at_ += 5;
    } else {
      const std::string rest(text_.substr(at_, 64));
      char* end = nullptr;
      const double number = std::strtod(rest.c_str(), &end);
      if (end == rest.c_str()) fail("expected a value");
      at_ += static_cast<size_t>(end - rest.c_str());
      result_.numbers[path] = number;
    }
  }

  std::string_view text_;
  size_t at_ = 0;
  FlatJson result_;
};

}  // namespace kiln::bench
