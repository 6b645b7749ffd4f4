// Python's float repr() and str.format, the subset Keras's callbacks use.
#include "kiln/callbacks/python_format.hpp"

#include "kiln/error.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace kiln::callbacks {

std::string python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // The shortest round-trip digits, in scientific form: "d.ddde±XX".
  char text[64];
  const auto [end, error] = std::to_chars(text, text + sizeof text, value, std::chars_format::scientific);
  std::string scientific(text, end);
  const size_t e = scientific.find('e');
  std::string digits = scientific.substr(0, e);
  const int exponent = std::atoi(scientific.c_str() + e + 1);
  const bool negative = digits.front() == '-';
  if (negative) digits.erase(0, 1);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string result;
  // Python writes fixed notation for exponents from -4 to 15, scientific otherwise.
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      result = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      result = digits + std::string(static_cast<size_t>(exponent + 1 - static_cast<int>(digits.size())), '0') + ".0";
    } else {
      result = digits.substr(0, static_cast<size_t>(exponent + 1)) + "." + digits.substr(static_cast<size_t>(exponent + 1));
    }
  } else {
    result = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char exponent_text[16];
    std::snprintf(exponent_text, sizeof exponent_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    result += exponent_text;
  }
  return negative ? "-" + result : result;
}

std::string format_path(const std::string& pattern, const Logs& values) {
  const auto fail = [&](const std::string& problem) {
    throw ValueError("cannot fill the file path '" + pattern + "': " + problem);
  };
  std::string result;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {  // "{{" or "}}"
      result += c;
      ++i;
      continue;
    }
    if (c == '}') fail("a '}' without its '{' (write '}}' for a brace)");
    if (c != '{') {
      result += c;
      continue;
    }
    const size_t close = pattern.find('}', i);
    if (close == std::string::npos) fail("a '{' without its '}' (write '{{' for a brace)");
    const std::string field = pattern.substr(i + 1, close - i - 1);
    i = close;
    const size_t colon = field.find(':');
    const std::string name = field.substr(0, colon);
    const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    const auto found = values.find(name);
    if (found == values.end()) {
      std::string available;
      for (const auto& [key, value] : values) available += (available.empty() ? "" : ", ") + key;
      fail("no value named '" + name + "' (there are: " + available + ")");
    }
    const double value = found->second;
    if (spec.empty()) {
      // Python prints an int as an int; epoch and batch are ints, logs' values floats.
      result += (name == "epoch" || name == "batch") ? std::to_string(static_cast<long long>(value)) : python_float(value);
      continue;
    }
    // [0][width][.precision]type, Python's format-spec subset.
    size_t p = 0;
    const bool zero_pad = spec[p] == '0';
    if (zero_pad) ++p;
    int width = 0, precision = -1;
    while (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) width = width * 10 + (spec[p++] - '0');
    if (p < spec.size() && spec[p] == '.') {
      precision = 0;
      ++p;
      while (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) precision = precision * 10 + (spec[p++] - '0');
    }
    const char type = p < spec.size() ? spec[p++] : 'g';
    if (p != spec.size() || std::string("dfeg").find(type) == std::string::npos) {
      fail("the format '" + spec + "' of '" + name + "' is not one kiln fills ([0][width][.precision] and d, f, e or g)");
    }
    char text[128];
    if (type == 'd') {
      if (value != std::floor(value)) fail("'" + name + "' is " + python_float(value) + ", not a whole number, for ':d'");
      std::snprintf(text, sizeof text, zero_pad ? "%0*lld" : "%*lld", width, static_cast<long long>(value));
    } else {
      const std::string c_format = std::string("%") + (zero_pad ? "0" : "") + "*.*" + type;
      std::snprintf(text, sizeof text, c_format.c_str(), width, precision < 0 ? 6 : precision, value);
    }
    result += text;
  }
  return result;
}

}  // namespace kiln::callbacks
