// Fuzzes read_npz: any bytes give arrays that fill their shapes, or a kiln::Error, nothing else.
#include "fuzz_input_file.hpp"

#include <kiln/error.hpp>
#include <kiln/io/npz.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::InputFile file;
  try {
    for (const kiln::io::NamedArray& array : kiln::io::read_npz(file.hold(data, size))) {
      if (static_cast<int64_t>(array.values.size()) != array.shape.element_count()) __builtin_trap();
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
