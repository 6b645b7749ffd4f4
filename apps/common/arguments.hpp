// apps/common/arguments.hpp — the small command-line parser the kiln apps share.
//
// Flags are "--name VALUE" or "--name=VALUE"; boolean flags take no value. Each app declares its
// flags with a help line, then asks for values by name. Unknown flags and bad numbers become an
// ArgumentError whose message the app prints before exiting with status 2.
#pragma once

#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::apps {

// The apps' limits on their flags: far beyond any real run, but inside what an int holds and what
// memory can take, so that a typo is a message rather than a crash or a silent wrap-around.
inline constexpr long long kMaxEpochs = 1'000'000;
inline constexpr long long kMaxBatchSize = 1 << 20;
inline constexpr long long kMaxThreadsFlag = 1'000'000;  // set_num_threads caps it further, saying so

class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Arguments {
 public:
  // Every program gets --help, listed first as argparse lists it.
  Arguments(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {
    add_switch("help", "show this help and exit");
  }

  // Declare a flag that takes a value (default_value is shown in --help) or a boolean switch.
  void add_option(const std::string& name, const std::string& value_name, const std::string& default_value,
                  const std::string& help) {
    flags_.push_back({name, value_name, default_value, help, true});
  }
  void add_switch(const std::string& name, const std::string& help) { flags_.push_back({name, "", "", help, false}); }

  // Parses argv; throws ArgumentError on an unknown flag or a missing value. Returns false when
  // --help was given: the help is printed, and the program should exit with status 0.
  bool parse(int argc, char** argv) {
    read(argc, argv);
    if (flag("help")) {
      print_help(std::cout);
      return false;
    }
    return true;
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  bool flag(const std::string& name) const { return has(name); }

  std::string text(const std::string& name) const {
    if (auto found = values_.find(name); found != values_.end()) return found->second;
    return find(name)->default_value;
  }
  long long integer(const std::string& name) const {
    const std::string value = text(name);
    try {
      size_t used = 0;
      const long long result = std::stoll(value, &used);
      if (used == value.size()) return result;
    } catch (const std::exception&) {
    }
    throw ArgumentError("--" + name + " needs a whole number, got '" + value + "'");
  }
  // A whole number that must lie in [lowest, highest]: out of range is an ArgumentError saying so.
  long long integer_in(const std::string& name, long long lowest, long long highest) const {
    const long long value = integer(name);
    if (value < lowest || value > highest) {
      throw ArgumentError("--" + name + " must be from " + std::to_string(lowest) + " to " + std::to_string(highest) +
                          ", got " + text(name));
    }
    return value;
  }
  double number(const std::string& name) const {
    const std::string value = text(name);
    try {
      size_t used = 0;
      const double result = std::stod(value, &used);
      if (used == value.size()) return result;
    } catch (const std::exception&) {
    }
    throw ArgumentError("--" + name + " needs a number, got '" + value + "'");
  }

  void print_help(std::ostream& out) const {
    out << "Usage: " << program_ << " [flags]\n\n" << summary_ << "\n\nFlags:\n";
    for (const Flag& flag : flags_) {
      std::string left = "  --" + flag.name + (flag.takes_value ? " " + flag.value_name : "");
      if (left.size() < 28) left += std::string(28 - left.size(), ' ');
      out << left << " " << flag.help;
      if (!flag.default_value.empty()) out << " (default: " << flag.default_value << ")";
      out << "\n";
    }
  }

 private:
  void read(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string word = argv[i];
      if (word.rfind("--", 0) != 0) throw ArgumentError("unexpected argument '" + word + "' (flags start with --)");
      std::optional<std::string> inline_value;
      if (const size_t equals = word.find('='); equals != std::string::npos) {
        inline_value = word.substr(equals + 1);
        word = word.substr(0, equals);
      }
      const Flag* flag = find(word.substr(2));
      if (!flag) throw ArgumentError("unknown flag '" + word + "' (see --help)");
      if (!flag->takes_value) {
        if (inline_value) throw ArgumentError(word + " takes no value");
        values_[flag->name] = "true";
      } else if (inline_value) {
        values_[flag->name] = *inline_value;
      } else {
        if (i + 1 >= argc) throw ArgumentError(word + " needs a value: " + word + " " + flag->value_name);
        values_[flag->name] = argv[++i];
      }
    }
  }

  struct Flag {
    std::string name, value_name, default_value, help;
    bool takes_value;
  };
  const Flag* find(const std::string& name) const {
    for (const Flag& flag : flags_) {
      if (flag.name == name) return &flag;
    }
    return nullptr;
  }

  std::string program_, summary_;
  std::vector<Flag> flags_;
  std::map<std::string, std::string> values_;
};

}  // namespace kiln::apps
