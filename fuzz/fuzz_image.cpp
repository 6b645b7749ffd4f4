// Fuzzes image decoding through kiln's wrapper (its own checks, then stb_image): any bytes give
// an image tensor of the shape asked for, or a kiln::Error, nothing else.
#include <kiln/error.hpp>
#include <kiln/image/ops.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // A lower pixel limit than the default's: 30 bytes of GIF can declare 129 million pixels,
    // within the default, whose decoding into 2 GB of floats outlasts libFuzzer's 10 s under
    // ASan. The check is the same code at any limit.
    const kiln::Tensor image =
        kiln::image::decode_image(std::span<const uint8_t>(data, size), {.max_pixels = int64_t{1} << 22});
    if (image.rank() != 3 || image.dim(2) < 1 || image.dim(2) > 4) __builtin_trap();
  } catch (const kiln::Error&) {
  }
  return 0;
}
