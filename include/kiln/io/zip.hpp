// kiln/io/zip.hpp — the zip container that .npz weight files and .kiln model files are made of.
//
// kiln writes entries stored as they are (no compression: weights barely compress) and reads
// stored and deflated ones, since numpy.savez_compressed deflates. No zip64, no encryption, no
// multi-disk archives: kiln's files need none of them, and refusing them keeps the reader small.
// Errors are FileErrors naming the file and the entry.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::io {

// One entry to write: its name and its bytes, given in pieces so that large arrays are not copied.
struct ZipEntryToWrite {
  std::string name;
  std::vector<std::span<const unsigned char>> pieces;
};

// Receives the archive's bytes, in order (an AtomicFile, or a string being built).
using ByteWriter = std::function<void(std::span<const unsigned char> bytes)>;

// Writes the entries, in order, stamped 1980-01-01 so the same contents give the same bytes.
// `path` names the file in errors: a name too long, or an archive that would pass 4 GiB.
void write_zip(std::span<const ZipEntryToWrite> entries, const ByteWriter& write, const std::string& path);

// The whole file's bytes. kiln's archives are small next to memory, and holding one whole keeps
// the reading simple. `kind` (".npz file", "model file") names the file in errors.
std::vector<unsigned char> read_file_bytes(const std::string& path, const std::string& kind);

// An archive in memory: its central directory is read, and checked to lie inside the bytes, on
// construction. The bytes must outlive the reader.
class ZipReader {
 public:
  struct Entry {
    std::string name;
    uint16_t flags = 0;
    uint16_t method = 0;
    uint32_t crc = 0;
    uint32_t compressed_size = 0;
    uint32_t uncompressed_size = 0;
    uint32_t local_header_offset = 0;
    bool deflated() const { return method == 8; }  // else stored (method 0), or refused on reading
  };

  ZipReader(std::span<const unsigned char> bytes, std::string path, std::string kind);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(std::string_view name) const;  // nullptr if there is no such entry

  // Checks that the entry can be read (not encrypted, not zip64, a method kiln knows, sizes that
  // are possible) and returns its bytes as they lie in the file, compressed or not.
  std::span<const unsigned char> stored_bytes(const Entry& entry) const;

  // The entry's contents with their CRC-32 checked: a view into the archive for a stored entry;
  // for a deflated one, inflated into `storage` and viewed there.
  std::span<const unsigned char> contents(const Entry& entry, std::vector<unsigned char>& storage) const;

  // Its first min(size, whole) bytes, uncompressed, without the CRC check: enough to read a header
  // before deciding whether to inflate the rest.
  std::vector<unsigned char> prefix(const Entry& entry, size_t size) const;

  [[noreturn]] void fail(const std::string& problem) const;
  [[noreturn]] void fail_entry(const Entry& entry, const std::string& problem) const;

 private:
  std::vector<unsigned char> inflate(const Entry& entry, std::span<const unsigned char> compressed, size_t size) const;

  std::span<const unsigned char> bytes_;
  std::string path_, kind_;
  std::vector<Entry> entries_;
};

}  // namespace kiln::io
