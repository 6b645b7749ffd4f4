// Little-endian integers, as zip and .npy files store them: appended to a byte string, and read
// from bytes. Private to kiln's file formats.
#pragma once

#include <cstdint>
#include <string>

namespace kiln::io::little_endian {

inline void append_u16(std::string& out, uint16_t value) {
  out += static_cast<char>(value & 0xFF);
  out += static_cast<char>(value >> 8);
}

inline void append_u32(std::string& out, uint32_t value) {
  for (int byte = 0; byte < 4; ++byte) out += static_cast<char>((value >> (8 * byte)) & 0xFF);
}

inline uint16_t load_u16(const unsigned char* bytes) { return static_cast<uint16_t>(bytes[0] | bytes[1] << 8); }

inline uint32_t load_u32(const unsigned char* bytes) {
  return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}

}  // namespace kiln::io::little_endian
