// Fuzzes the file-cache format: a cache(path) whose file exists is read back element by element;
// any bytes give whole elements or a kiln::Error, nothing else.
#include "fuzz_input_file.hpp"

#include <kiln/data/dataset.hpp>
#include <kiln/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::InputFile file;
  static const kiln::Tensor source_x(kiln::Shape{1, 2}), source_y(kiln::Shape{1});
  try {
    // The source is never read: the cache file exists, so every element comes from it.
    const auto cached = kiln::data::from_tensor_slices(source_x, source_y).batch(1).cache(file.hold(data, size));
    for (const kiln::LabeledData& batch : cached) {
      if (batch.x.size() != batch.x.shape().element_count()) __builtin_trap();
      if (!kiln::data::sample_weight_fits(batch.sample_weight, batch.x.rows())) __builtin_trap();
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
