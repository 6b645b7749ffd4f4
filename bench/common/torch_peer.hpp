// bench/common/torch_peer.hpp — runs a benchmark's PyTorch peer script (bench/peers/) once and
// reads the figures it writes as JSON.
//
// The peer runs with Debian's python3-torch and, when it is installed, Debian's OpenMP build of
// OpenBLAS, PyTorch's fastest set-up here (bench/CMakeLists.txt passes both paths in). When the
// peer cannot run, the benchmark says why and goes on with kiln alone.
#pragma once

#include "flat_json.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#ifndef KILN_SOURCE_DIR
#define KILN_SOURCE_DIR "."
#endif
#ifndef KILN_OPENBLAS_OPENMP_DIR
#define KILN_OPENBLAS_OPENMP_DIR "/usr/lib/x86_64-linux-gnu/openblas-openmp"
#endif

namespace kiln::bench {

struct PeerRun {
  std::string json;  // the peer's document, verbatim
  FlatJson figures;
};

// `text` as one word for the shell, whatever it holds: in single quotes, each ' written '\''.
inline std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs /usr/bin/python3 bench/peers/<script> <arguments> --json <a temporary file>; nullopt,
// after saying why on standard output, when PyTorch is missing or the script fails. `arguments`
// go to the shell as they are: quote paths in them with shell_quoted.
inline std::optional<PeerRun> run_torch_peer(const std::string& program, const std::string& script,
                                             const std::string& arguments) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    std::cout << "PyTorch is not installed (scripts/setup.sh --bench installs it): kiln alone below.\n";
    return std::nullopt;
  }
  std::string environment;
  if (std::filesystem::exists(KILN_OPENBLAS_OPENMP_DIR)) {
    environment = "LD_LIBRARY_PATH=" + shell_quoted(KILN_OPENBLAS_OPENMP_DIR) + " ";
  } else {
    std::cout << "The OpenMP build of OpenBLAS is not installed (apt-get install libopenblas0-openmp): PyTorch uses "
                 "the system's default BLAS.\n";
  }
  const std::string output =
      (std::filesystem::temp_directory_path() / (program + "-torch-" + std::to_string(getpid()) + ".json")).string();
  const std::string command = environment + "/usr/bin/python3 " +
                              shell_quoted(std::string(KILN_SOURCE_DIR) + "/bench/peers/" + script) + " " + arguments +
                              " --json " + shell_quoted(output);
  std::cerr << program << ": running the PyTorch peer: " << command << "\n";
  const int status = std::system(command.c_str());
  std::stringstream text;
  text << std::ifstream(output).rdbuf();
  std::filesystem::remove(output);
  PeerRun run{text.str(), {}};
  if (status != 0 || run.json.empty()) {
    std::cout << "The PyTorch peer failed (exit status " << status << "; command: " << command << "): kiln alone below.\n";
    return std::nullopt;
  }
  run.figures = FlatJsonReader::read(run.json);
  return run;
}

// The OpenBLAS library among the ones the peer's process had mapped (its "blas" list), or
// "unknown".
inline std::string peer_blas(const PeerRun& run) {
  for (const auto& [path, text] : run.figures.texts) {
    if (path.rfind("blas.", 0) == 0 && text.find("libopenblas") != std::string::npos) return text;
  }
  return "unknown";
}

}  // namespace kiln::bench
