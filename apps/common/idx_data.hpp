// apps/common/idx_data.hpp — the check every IDX-reading app makes before anything else: are the
// four files there? If not, one line saying how to get them (the app then exits with 2).
#pragma once

#include "arguments.hpp"

#include <kiln/kiln.hpp>

#include <iostream>
#include <string>

namespace kiln::apps {

inline constexpr const char* kIdxFileNames[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// --data DIR, the folder idx_data_present() checks (Fashion-MNIST's by default).
inline void add_idx_data_option(Arguments& arguments) {
  arguments.add_option("data", "DIR", datasets::kFashionMnistDir, "folder with the four IDX files, plain or .gz");
}

// True when `dir` holds the four IDX files, plain or .gz.
inline bool holds_idx_files(const std::string& dir) {
  try {
    for (const char* name : kIdxFileNames) datasets::find_idx_file(dir, name);
    return true;
  } catch (const FileError&) {
    return false;
  }
}

// True when `dir` holds the four IDX files; otherwise prints why not and returns false.
inline bool idx_data_present(const char* program, const std::string& dir) {
  if (!holds_idx_files(dir)) {
    std::cerr << program << ": no IDX data set in " << dir
              << (dir == datasets::kFashionMnistDir
                      ? ": install Debian's dataset-fashion-mnist package (scripts/setup.sh does), or pass --data DIR"
                      : ": --data needs a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (plain or .gz)")
              << "\n";
    return false;
  }
  return true;
}

}  // namespace kiln::apps
