// The zip container (PKWARE's APPNOTE.TXT), written and read, with zlib for CRC-32s and inflating.
//
// A zip file is, for each entry, a local header + name + data; then the central directory, one
// record per entry pointing back at its local header; then the end-of-central-directory record
// pointing at the directory. Readers start from that last record, as unzip does.
#include "kiln/io/zip.hpp"

#include "kiln/error.hpp"
#include "little_endian.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

namespace kiln::io {
namespace {

using namespace little_endian;

std::string hex32(uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::span<const unsigned char> as_bytes(const std::string& text) {
  return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

// ---------------------------------------------------------------------------------------------
// Zip constants (APPNOTE.TXT, sections 4.3 and 4.4).

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;    // "PK\3\4"
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;  // "PK\1\2"
constexpr uint32_t kEndRecordSignature = 0x06054b50;      // "PK\5\6"
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndRecordSize = 22;
constexpr size_t kMaxZipCommentSize = 0xFFFF;

constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflated = 8;
constexpr uint16_t kZipVersion = 20;             // 2.0, the version plain stored/deflated entries need
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagUtf8Name = 0x0800;
// Every entry is stamped 1980-01-01 00:00 (the earliest DOS date), so the same contents always
// give byte-identical files.
constexpr uint16_t kDosTime = 0;
constexpr uint16_t kDosDate = (1 << 5) | 1;      // (year - 1980) << 9 | month << 5 | day
constexpr uint64_t kMaxZipOffset = 0xFFFFFFFF;   // beyond this a zip needs zip64
constexpr uint32_t kZip64Marker = 0xFFFFFFFF;    // a 32-bit field that moved to a zip64 record
constexpr size_t kMaxZipEntries = 0xFFFF;
constexpr size_t kMaxNameSize = 0xFFFF;

// Deflate cannot shrink data by more than about 1032 to 1 (a 258-byte match per 2 bits, at best):
// an entry that claims more is damaged or hostile, and is refused before anything is allocated.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kDeflateSlack = 64;  // a tiny entry's fixed costs (block headers, end code)

uint16_t name_flags(const std::string& name) {
  // Bit 11 tells unzip tools the name is UTF-8 rather than the old DOS code page.
  for (unsigned char c : name) {
    if (c >= 0x80) return kFlagUtf8Name;
  }
  return 0;
}

// Where the central directory will point for one entry already written.
struct WrittenEntry {
  const std::string* name;
  uint16_t flags = 0;
  uint32_t crc = 0;
  uint32_t size = 0;
  uint32_t local_header_offset = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writing.

void write_zip(std::span<const ZipEntryToWrite> entries, const ByteWriter& write, const std::string& path) {
  if (entries.size() > kMaxZipEntries) {
    throw ValueError("cannot write '" + path + "': " + std::to_string(entries.size()) +
                     " entries is more than the 65535 a zip file holds without zip64");
  }
  std::set<std::string_view> seen_names;
  for (const ZipEntryToWrite& entry : entries) {
    if (entry.name.empty()) throw ValueError("cannot write '" + path + "': an entry has an empty name");
    if (entry.name.size() > kMaxNameSize) {
      throw ValueError("cannot write '" + path + "': an entry's name is longer than a zip entry name may be");
    }
    if (!seen_names.insert(entry.name).second) {
      throw ValueError("cannot write '" + path + "': two entries are named '" + entry.name + "'");
    }
  }

  std::vector<WrittenEntry> written;
  uint64_t offset = 0;
  for (const ZipEntryToWrite& entry : entries) {
    WrittenEntry record{&entry.name, name_flags(entry.name)};
    uint64_t size = 0;
    uLong crc = crc32_z(0, nullptr, 0);
    for (std::span<const unsigned char> piece : entry.pieces) {
      // Only with data: zlib treats a null buffer (an empty vector's) as "start over" and returns 0.
      if (!piece.empty()) crc = crc32_z(crc, piece.data(), piece.size());
      size += piece.size();
    }
    const uint64_t entry_end = offset + kLocalHeaderSize + entry.name.size() + size;
    if (entry_end > kMaxZipOffset) {
      throw FileError("cannot write '" + path + "': with entry '" + entry.name +
                      "' it would pass 4 GiB, the most a zip file holds without zip64");
    }
    record.crc = static_cast<uint32_t>(crc);
    record.size = static_cast<uint32_t>(size);
    record.local_header_offset = static_cast<uint32_t>(offset);

    std::string local_header;
    append_u32(local_header, kLocalHeaderSignature);
    append_u16(local_header, kZipVersion);
    append_u16(local_header, record.flags);
    append_u16(local_header, kMethodStored);
    append_u16(local_header, kDosTime);
    append_u16(local_header, kDosDate);
    append_u32(local_header, record.crc);
    append_u32(local_header, record.size);  // compressed size
    append_u32(local_header, record.size);  // uncompressed size
    append_u16(local_header, static_cast<uint16_t>(entry.name.size()));
    append_u16(local_header, 0);  // no extra field
    local_header += entry.name;

    write(as_bytes(local_header));
    for (std::span<const unsigned char> piece : entry.pieces) write(piece);
    offset = entry_end;
    written.push_back(record);
  }

  std::string directory;
  for (const WrittenEntry& record : written) {
    append_u32(directory, kCentralHeaderSignature);
    append_u16(directory, kZipVersion);  // made by: MS-DOS attributes, zip 2.0
    append_u16(directory, kZipVersion);  // needed to extract
    append_u16(directory, record.flags);
    append_u16(directory, kMethodStored);
    append_u16(directory, kDosTime);
    append_u16(directory, kDosDate);
    append_u32(directory, record.crc);
    append_u32(directory, record.size);
    append_u32(directory, record.size);
    append_u16(directory, static_cast<uint16_t>(record.name->size()));
    append_u16(directory, 0);  // extra field length
    append_u16(directory, 0);  // comment length
    append_u16(directory, 0);  // disk where the entry starts
    append_u16(directory, 0);  // internal attributes
    append_u32(directory, 0);  // external attributes
    append_u32(directory, record.local_header_offset);
    directory += *record.name;
  }
  if (offset + directory.size() + kEndRecordSize > kMaxZipOffset) {
    throw FileError("cannot write '" + path + "': it would pass 4 GiB, the most a zip file holds without zip64");
  }

  std::string end_record;
  append_u32(end_record, kEndRecordSignature);
  append_u16(end_record, 0);  // this disk
  append_u16(end_record, 0);  // disk where the directory starts
  append_u16(end_record, static_cast<uint16_t>(written.size()));  // entries on this disk
  append_u16(end_record, static_cast<uint16_t>(written.size()));  // entries in all
  append_u32(end_record, static_cast<uint32_t>(directory.size()));
  append_u32(end_record, static_cast<uint32_t>(offset));  // where the directory starts
  append_u16(end_record, 0);  // comment length
  write(as_bytes(directory));
  write(as_bytes(end_record));
}

// ---------------------------------------------------------------------------------------------
// Reading.

std::vector<unsigned char> read_file_bytes(const std::string& path, const std::string& kind) {
  auto fail = [&](const std::string& problem) { throw FileError("cannot read " + kind + " '" + path + "': " + problem); };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail("it is a folder");
  const uintmax_t file_size = std::filesystem::file_size(path, error);
  if (error) fail(error.message());
  if (file_size > kMaxZipOffset) {
    fail("it is " + std::to_string(file_size) +
         " bytes, over the 4 GiB that a zip file holds without zip64, which kiln does not read");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(std::strerror(errno));
  std::vector<unsigned char> bytes(static_cast<size_t>(file_size));
  file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<size_t>(file.gcount()) != bytes.size()) fail("reading it stopped early");
  return bytes;
}

void ZipReader::fail(const std::string& problem) const {
  throw FileError("cannot read " + kind_ + " '" + path_ + "': " + problem);
}

void ZipReader::fail_entry(const Entry& entry, const std::string& problem) const {
  throw FileError("cannot read entry '" + entry.name + "' of " + kind_ + " '" + path_ + "': " + problem);
}

ZipReader::ZipReader(std::span<const unsigned char> bytes, std::string path, std::string kind)
    : bytes_(bytes), path_(std::move(path)), kind_(std::move(kind)) {
  // The end record is the last 22 bytes plus a comment of up to 64 KiB: search back for it.
  if (bytes.size() < kEndRecordSize) {
    fail("it is " + std::to_string(bytes.size()) + " bytes, too short to be a zip file (truncated?)");
  }
  std::optional<size_t> end_record_offset;
  const size_t lowest_start =
      bytes.size() - kEndRecordSize > kMaxZipCommentSize ? bytes.size() - kEndRecordSize - kMaxZipCommentSize : 0;
  // The signature alone can occur inside an entry (a .kiln file's weights are a zip of their own):
  // the real record is the one whose comment ends exactly at the end of the file.
  for (size_t start = bytes.size() - kEndRecordSize + 1; start-- > lowest_start;) {
    if (load_u32(&bytes[start]) == kEndRecordSignature &&
        start + kEndRecordSize + load_u16(&bytes[start + 20]) == bytes.size()) {
      end_record_offset = start;
      break;
    }
  }
  if (!end_record_offset) fail("it has no zip end-of-central-directory record, so it is truncated or not a zip file");
  const unsigned char* end_record = &bytes[*end_record_offset];
  const uint16_t this_disk = load_u16(end_record + 4);
  const uint16_t directory_disk = load_u16(end_record + 6);
  const uint16_t entry_count = load_u16(end_record + 10);
  const uint32_t directory_size = load_u32(end_record + 12);
  const uint32_t directory_offset = load_u32(end_record + 16);
  if (entry_count == kMaxZipEntries || directory_size == kZip64Marker || directory_offset == kZip64Marker) {
    fail("it is a zip64 archive (over 4 GiB or 65535 entries), which kiln does not read");
  }
  if (this_disk != 0 || directory_disk != 0) fail("it is a zip archive split over several disks");
  if (uint64_t{directory_offset} + directory_size > *end_record_offset) {
    fail("its central directory would run past the end of the file (truncated?)");
  }

  size_t position = directory_offset;
  const size_t directory_end = size_t{directory_offset} + directory_size;
  for (int index = 0; index < entry_count; ++index) {
    if (position + kCentralHeaderSize > directory_end || load_u32(&bytes[position]) != kCentralHeaderSignature) {
      fail("its central directory is damaged at entry " + std::to_string(index + 1) + " of " +
           std::to_string(entry_count));
    }
    const unsigned char* record = &bytes[position];
    Entry entry;
    entry.flags = load_u16(record + 8);
    entry.method = load_u16(record + 10);
    entry.crc = load_u32(record + 16);
    entry.compressed_size = load_u32(record + 20);
    entry.uncompressed_size = load_u32(record + 24);
    const size_t name_size = load_u16(record + 28);
    const size_t extra_size = load_u16(record + 30);
    const size_t comment_size = load_u16(record + 32);
    entry.local_header_offset = load_u32(record + 42);
    const size_t record_size = kCentralHeaderSize + name_size + extra_size + comment_size;
    if (position + record_size > directory_end) {
      fail("its central directory is cut short at entry " + std::to_string(index + 1));
    }
    entry.name.assign(reinterpret_cast<const char*>(record + kCentralHeaderSize), name_size);
    entries_.push_back(std::move(entry));
    position += record_size;
  }
}

const ZipReader::Entry* ZipReader::find(std::string_view name) const {
  auto found = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& entry) { return entry.name == name; });
  return found == entries_.end() ? nullptr : &*found;
}

std::span<const unsigned char> ZipReader::stored_bytes(const Entry& entry) const {
  if (entry.flags & kFlagEncrypted) fail_entry(entry, "it is encrypted");
  if (entry.compressed_size == kZip64Marker || entry.uncompressed_size == kZip64Marker ||
      entry.local_header_offset == kZip64Marker) {
    fail_entry(entry, "it is a zip64 entry (over 4 GiB), which kiln does not read");
  }
  if (entry.method == kMethodStored) {
    if (entry.compressed_size != entry.uncompressed_size) {
      fail_entry(entry, "it is stored uncompressed, yet its two sizes in the zip directory differ");
    }
  } else if (entry.method == kMethodDeflated) {
    if (entry.uncompressed_size > uint64_t{entry.compressed_size} * kMaxDeflateRatio + kDeflateSlack) {
      fail_entry(entry, "the zip directory says its " + std::to_string(entry.compressed_size) +
                            " deflated bytes hold " + std::to_string(entry.uncompressed_size) +
                            ", more than deflate can pack into them");
    }
  } else {
    fail_entry(entry, "it is compressed with zip method " + std::to_string(entry.method) +
                          "; kiln reads stored (0) and deflated (8) entries, as numpy writes");
  }

  const size_t header_offset = entry.local_header_offset;
  if (uint64_t{header_offset} + kLocalHeaderSize > bytes_.size() ||
      load_u32(&bytes_[header_offset]) != kLocalHeaderSignature) {
    fail_entry(entry, "its local header is missing or damaged (truncated file?)");
  }
  // The directory is the authority on sizes and CRC: numpy's writer leaves 0xFFFFFFFF and a
  // zip64 field in the local header, so only the name and extra lengths are taken from it.
  const size_t name_size = load_u16(&bytes_[header_offset + 26]);
  const size_t extra_size = load_u16(&bytes_[header_offset + 28]);
  const uint64_t data_offset = uint64_t{header_offset} + kLocalHeaderSize + name_size + extra_size;
  if (data_offset + entry.compressed_size > bytes_.size()) {
    fail_entry(entry, "its " + std::to_string(entry.compressed_size) + " bytes of data run past the end of the file (" +
                          std::to_string(bytes_.size()) + " bytes); the file is truncated");
  }
  return bytes_.subspan(static_cast<size_t>(data_offset), entry.compressed_size);
}

// Inflates a deflated entry's first `size` bytes (all of it when size is the uncompressed size).
// Zip stores raw deflate data, without zlib's header or checksum, hence the negative windowBits.
std::vector<unsigned char> ZipReader::inflate(const Entry& entry, std::span<const unsigned char> compressed,
                                              size_t size) const {
  std::vector<unsigned char> inflated(size);
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail_entry(entry, "zlib could not start inflating");
  stream.next_in = const_cast<Bytef*>(compressed.data());  // zlib's API is not const-correct
  stream.avail_in = static_cast<uInt>(compressed.size());
  stream.next_out = inflated.data();
  stream.avail_out = static_cast<uInt>(inflated.size());
  const int status = ::inflate(&stream, Z_FINISH);
  const std::string zlib_message = stream.msg ? stream.msg : "";
  const uLong inflated_size = stream.total_out;
  inflateEnd(&stream);
  const bool whole = size == entry.uncompressed_size;
  // A prefix ends with the output full (Z_BUF_ERROR: there was more to come) or the stream's end.
  const bool prefix_done = !whole && inflated_size == size && (status == Z_BUF_ERROR || status == Z_STREAM_END);
  if ((whole && status != Z_STREAM_END) || (!whole && !prefix_done && status != Z_OK)) {
    fail_entry(entry, "its deflated data does not inflate to the " + std::to_string(entry.uncompressed_size) +
                          " bytes the zip directory promises" +
                          (zlib_message.empty() ? "" : " (zlib: " + zlib_message + ")"));
  }
  if (whole && inflated_size != entry.uncompressed_size) {
    fail_entry(entry, "it inflates to " + std::to_string(inflated_size) + " bytes, but the zip directory promises " +
                          std::to_string(entry.uncompressed_size));
  }
  inflated.resize(inflated_size);
  return inflated;
}

std::span<const unsigned char> ZipReader::contents(const Entry& entry, std::vector<unsigned char>& storage) const {
  std::span<const unsigned char> data = stored_bytes(entry);
  if (entry.method == kMethodDeflated) {
    storage = inflate(entry, data, entry.uncompressed_size);
    data = storage;
  }
  const uint32_t actual_crc = static_cast<uint32_t>(crc32_z(0, data.data(), data.size()));
  if (actual_crc != entry.crc) {
    fail_entry(entry, "its CRC-32 is " + hex32(actual_crc) + " but the zip directory records " + hex32(entry.crc) +
                          ", so the data is corrupt");
  }
  return data;
}

std::vector<unsigned char> ZipReader::prefix(const Entry& entry, size_t size) const {
  std::span<const unsigned char> data = stored_bytes(entry);
  size = std::min<size_t>(size, entry.uncompressed_size);
  if (entry.method == kMethodDeflated) return inflate(entry, data, size);
  return {data.begin(), data.begin() + static_cast<std::ptrdiff_t>(size)};
}

}  // namespace kiln::io
