// apps/common/arguments.hpp — the command-line flags the kiln apps share, parsed by CLI11.
//
// Flags are "--name VALUE" or "--name=VALUE"; boolean flags take no value; a flag given twice
// keeps its last value. Each app declares its flags with a help line, then asks for values by
// name. CLI11 does the parsing; the values stay strings until asked for, so a bad number is
// reported with the flag's own range, and --help is written here, argparse's way, one line a
// flag with its default. Unknown flags, missing values and bad numbers become an ArgumentError
// whose message the app prints before exiting with status 2.
#pragma once

#include <CLI/CLI.hpp>

#include <deque>
#include <iostream>
#include <map>
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
    CLI::App parser(summary_, program_);
    parser.set_help_flag();  // --help is one of the flags above; print_help writes it
    std::deque<std::string> given_values;  // one per flag taking a value; a deque keeps their addresses
    std::vector<std::pair<const Flag*, CLI::Option*>> options;
    for (const Flag& flag : flags_) {
      CLI::Option* option = nullptr;
      if (flag.takes_value) {
        option = parser.add_option("--" + flag.name, given_values.emplace_back(), flag.help)
                     ->type_name(flag.value_name)
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      } else {
        option = parser.add_flag("--" + flag.name, flag.help);
      }
      options.emplace_back(&flag, option);
    }
    try {
      parser.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
      throw ArgumentError(std::string(error.what()) + " (see --help)");
    }
    size_t value_index = 0;
    for (const auto& [flag, option] : options) {
      const std::string* value = flag->takes_value ? &given_values[value_index++] : nullptr;
      if (option->count() > 0) values_[flag->name] = value ? *value : "true";
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
