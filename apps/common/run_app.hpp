// apps/common/run_app.hpp — every kiln program's main(): run the body and turn what it throws into
// one readable line and an exit status, 2 for bad flags, 1 for anything else.
#pragma once

#include "arguments.hpp"

#include <exception>
#include <iostream>

namespace kiln::apps {

inline int run_app(const char* program, int (*body)(int, char**), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const ArgumentError& error) {
    std::cerr << program << ": " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << program << ": error: " << error.what() << "\n";
    return 1;
  }
}

}  // namespace kiln::apps
