// fuzz/fuzz_input_file.hpp — a fuzzer's input as a file kiln can open by path, without touching
// the disk: an in-memory file (memfd) named through /proc/self/fd. One per target, reused.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace kiln::fuzz {

class InputFile {
 public:
  InputFile() : descriptor_(::memfd_create("kiln-fuzz-input", 0)) {
    if (descriptor_ < 0) std::abort();
  }
  // Replaces the file's contents with the input; returns a path that opens it.
  std::string hold(const uint8_t* data, size_t size) {
    if (::ftruncate(descriptor_, 0) != 0) std::abort();
    for (size_t written = 0; written < size;) {
      const ssize_t n = ::pwrite(descriptor_, data + written, size - written, static_cast<off_t>(written));
      if (n <= 0) std::abort();
      written += static_cast<size_t>(n);
    }
    return "/proc/self/fd/" + std::to_string(descriptor_);
  }

 private:
  int descriptor_;
};

}  // namespace kiln::fuzz
