// tests/error_message.hpp — for tests about error messages: run an action that must throw, and
// get the message of what it threw (failing the test if it throws nothing, or something else).
#pragma once

#include <doctest/doctest.h>

#include <kiln/error.hpp>

#include <string>

namespace kiln::testing {

template <class ExpectedError = kiln::Error, class Action>
std::string error_message(Action action) {
  try {
    action();
  } catch (const ExpectedError& error) {
    return error.what();
  }
  FAIL("the expected exception was not thrown");
  return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace kiln::testing
