// tests/image_files.hpp — image files for the image tests, written with stb_image_write (PNG, JPEG,
// BMP) or by hand (GIF, which stb cannot write), into a temporary folder removed afterwards.
// Pixels are given as bytes in [height, width, channels] order, as kiln's images hold them.
#pragma once

#include "temporary_directory.hpp"

#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace kiln_test {

using Bytes = std::vector<uint8_t>;

// A temporary folder (temporary_directory.hpp) whose file() also creates the folders on the way,
// so a test writes "animals/cat/a.png" in one call.
class TemporaryFolder : public kiln::testing::TemporaryDirectory {
 public:
  std::string file(const std::string& relative) const {
    const std::filesystem::path full = std::filesystem::path(path()) / relative;
    std::filesystem::create_directories(full.parent_path());
    return full.string();
  }
};

inline void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_png(const std::string& path, int width, int height, int channels, const Bytes& pixels) {
  REQUIRE(pixels.size() == static_cast<size_t>(width * height * channels));
  REQUIRE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels) != 0);
}

inline void write_jpeg(const std::string& path, int width, int height, int channels, const Bytes& pixels, int quality = 95) {
  REQUIRE(pixels.size() == static_cast<size_t>(width * height * channels));
  REQUIRE(stbi_write_jpg(path.c_str(), width, height, channels, pixels.data(), quality) != 0);
}

inline void write_bmp(const std::string& path, int width, int height, int channels, const Bytes& pixels) {
  REQUIRE(stbi_write_bmp(path.c_str(), width, height, channels, pixels.data()) != 0);
}

// Encodes in memory, for decode tests that need no file.
inline Bytes png_bytes(int width, int height, int channels, const Bytes& pixels) {
  Bytes out;
  auto append = [](void* context, void* data, int size) {
    auto* bytes = static_cast<Bytes*>(context);
    bytes->insert(bytes->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_png_to_func(append, &out, width, height, channels, pixels.data(), width * channels) != 0);
  return out;
}

inline Bytes jpeg_bytes(int width, int height, int channels, const Bytes& pixels, int quality = 95) {
  Bytes out;
  auto append = [](void* context, void* data, int size) {
    auto* bytes = static_cast<Bytes*>(context);
    bytes->insert(bytes->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_jpg_to_func(append, &out, width, height, channels, pixels.data(), quality) != 0);
  return out;
}

inline Bytes bmp_bytes(int width, int height, int channels, const Bytes& pixels) {
  Bytes out;
  auto append = [](void* context, void* data, int size) {
    auto* bytes = static_cast<Bytes*>(context);
    bytes->insert(bytes->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_bmp_to_func(append, &out, width, height, channels, pixels.data()) != 0);
  return out;
}

// A GIF89a of one or more frames (each `width * height` palette indices) with a 256-colour global
// palette (palette[i] is {r, g, b}). The LZW stream holds only literal codes after a clear code: a
// valid encoding, and with at most 250 pixels per frame the code size stays at 9 bits.
inline Bytes gif_bytes(int width, int height, const std::vector<Bytes>& frames, const std::vector<std::array<uint8_t, 3>>& palette) {
  REQUIRE(width * height <= 250);
  Bytes out = {'G', 'I', 'F', '8', '9', 'a'};
  auto put16 = [&](int value) {
    out.push_back(static_cast<uint8_t>(value & 0xFF));
    out.push_back(static_cast<uint8_t>(value >> 8));
  };
  put16(width);
  put16(height);
  out.push_back(0xF7);  // global colour table of 2^(7+1) = 256 entries
  out.push_back(0);     // background colour index
  out.push_back(0);     // pixel aspect ratio
  for (int i = 0; i < 256; ++i) {
    for (int c = 0; c < 3; ++c) out.push_back(i < static_cast<int>(palette.size()) ? palette[static_cast<size_t>(i)][static_cast<size_t>(c)] : 0);
  }
  for (const Bytes& indices : frames) {
    REQUIRE(indices.size() == static_cast<size_t>(width * height));
    out.push_back(0x2C);  // image descriptor
    put16(0);
    put16(0);
    put16(width);
    put16(height);
    out.push_back(0);  // no local colour table, not interlaced
    out.push_back(8);  // LZW minimum code size
    // 9-bit codes, least significant bit first: clear (256), the pixels, end (257).
    Bytes data;
    uint32_t buffer = 0;
    int bits = 0;
    auto emit = [&](uint32_t code) {
      buffer |= code << bits;
      bits += 9;
      while (bits >= 8) {
        data.push_back(static_cast<uint8_t>(buffer & 0xFF));
        buffer >>= 8;
        bits -= 8;
      }
    };
    emit(256);
    for (uint8_t index : indices) emit(index);
    emit(257);
    if (bits > 0) data.push_back(static_cast<uint8_t>(buffer & 0xFF));
    for (size_t at = 0; at < data.size(); at += 255) {  // sub-blocks of at most 255 bytes
      const size_t length = std::min<size_t>(255, data.size() - at);
      out.push_back(static_cast<uint8_t>(length));
      out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(at), data.begin() + static_cast<std::ptrdiff_t>(at + length));
    }
    out.push_back(0);  // end of the image data
  }
  out.push_back(0x3B);  // trailer
  return out;
}

}  // namespace kiln_test
