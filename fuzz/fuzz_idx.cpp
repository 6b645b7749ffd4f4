// Fuzzes read_idx, plain and gzipped: any bytes give an IdxArray or a kiln::Error, nothing else.
#include "fuzz_input_file.hpp"

#include <kiln/datasets/idx.hpp>
#include <kiln/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::InputFile file;
  try {
    const kiln::datasets::IdxArray array = kiln::datasets::read_idx(file.hold(data, size));
    // What was read is what the header announced.
    if (static_cast<int64_t>(array.bytes.size()) != array.shape.element_count()) __builtin_trap();
  } catch (const kiln::Error&) {
  }
  return 0;
}
