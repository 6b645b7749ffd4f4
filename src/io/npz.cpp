// .npz reading and writing: the .npy header, the zip container around it, and zlib for CRC-32s
// and for inflating numpy.savez_compressed's entries.
//
// A zip file is, for each entry, a local header + name + data; then the central directory, one
// record per entry pointing back at its local header; then the end-of-central-directory record
// pointing at the directory. Readers start from that last record, as unzip does. No zip64, no
// encryption, no multi-disk archives: kiln's weight files need none of them.
#include "kiln/io/npz.hpp"

#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"

#include <zlib.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

namespace kiln::io {
namespace {

// Array data is copied to and from the file as it lies in memory, so the float32 bytes are
// little-endian ('<f4') only on a little-endian machine; every machine kiln targets is one.
static_assert(std::endian::native == std::endian::little, "kiln's .npz code assumes a little-endian machine");

// ---------------------------------------------------------------------------------------------
// Little-endian integers, as both zip and .npy store them.

void append_u16(std::string& out, uint16_t value) {
  out += static_cast<char>(value & 0xFF);
  out += static_cast<char>(value >> 8);
}

void append_u32(std::string& out, uint32_t value) {
  for (int byte = 0; byte < 4; ++byte) out += static_cast<char>((value >> (8 * byte)) & 0xFF);
}

uint16_t load_u16(const unsigned char* bytes) { return static_cast<uint16_t>(bytes[0] | bytes[1] << 8); }

uint32_t load_u32(const unsigned char* bytes) {
  return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}

std::string hex32(uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Zip constants (PKWARE's APPNOTE.TXT, sections 4.3 and 4.4).

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
// Every entry is stamped 1980-01-01 00:00 (the earliest DOS date), so the same arrays always
// give byte-identical files.
constexpr uint16_t kDosTime = 0;
constexpr uint16_t kDosDate = (1 << 5) | 1;      // (year - 1980) << 9 | month << 5 | day
constexpr uint64_t kMaxZipOffset = 0xFFFFFFFF;   // beyond this a zip needs zip64
constexpr uint32_t kZip64Marker = 0xFFFFFFFF;    // a 32-bit field that moved to a zip64 record
constexpr uint16_t kMaxZipEntries = 0xFFFF;

// ---------------------------------------------------------------------------------------------
// .npy (numpy/lib/format.py): magic, version, header length, then a Python dict literal.

constexpr std::string_view kNpyMagic{"\x93NUMPY", 6};
constexpr size_t kNpyVersion1PreambleSize = 10;  // magic, major, minor, uint16 header length
constexpr size_t kNpyAlignment = 64;
constexpr std::string_view kNpySuffix = ".npy";

// Python's tuple syntax: () for a scalar, (10,) for one axis, (784, 128) for more.
std::string npy_shape_text(const Shape& shape) {
  std::string text = "(";
  for (int axis = 0; axis < shape.rank(); ++axis) {
    if (axis > 0) text += ", ";
    text += std::to_string(shape[axis]);
  }
  if (shape.rank() == 1) text += ",";
  return text + ")";
}

// The bytes before the array data. numpy pads the dict with spaces up to a '\n' so the data
// starts on a 64-byte boundary, which lets numpy memory-map it aligned; we do the same.
std::string npy_preamble(const Shape& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + npy_shape_text(shape) + ", }";
  const size_t unpadded_size = kNpyVersion1PreambleSize + dict.size() + 1;  // + 1 for the '\n'
  const size_t padded_size = (unpadded_size + kNpyAlignment - 1) / kNpyAlignment * kNpyAlignment;
  dict.append(padded_size - unpadded_size, ' ');
  dict += '\n';

  std::string preamble{kNpyMagic};
  preamble += '\x01';  // format version 1.0: its uint16 header length is ample for 6 axes
  preamble += '\x00';
  append_u16(preamble, static_cast<uint16_t>(dict.size()));
  return preamble + dict;
}

// What a .npy header dict says about its array.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> dims;
};

// Parses the dict numpy writes, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3,), }.
// Only the Python literals numpy uses are understood: strings, True/False and tuples of ints.
// Returns nothing if the text is not such a dict or lacks one of the three keys.
class NpyHeaderParser {
 public:
  explicit NpyHeaderParser(std::string_view text) : text_(text) {}

  std::optional<NpyHeader> parse() {
    NpyHeader header;
    bool saw_descr = false, saw_fortran_order = false, saw_shape = false;
    if (!consume('{')) return std::nullopt;
    while (!consume('}')) {
      std::optional<std::string> key = parse_string();
      if (!key || !consume(':')) return std::nullopt;
      if (*key == "descr") {
        std::optional<std::string> descr = parse_string();
        if (!descr) return std::nullopt;
        header.descr = *descr;
        saw_descr = true;
      } else if (*key == "fortran_order") {
        std::optional<bool> fortran_order = parse_bool();
        if (!fortran_order) return std::nullopt;
        header.fortran_order = *fortran_order;
        saw_fortran_order = true;
      } else if (*key == "shape") {
        std::optional<std::vector<int64_t>> dims = parse_int_tuple();
        if (!dims) return std::nullopt;
        header.dims = *dims;
        saw_shape = true;
      } else {
        return std::nullopt;  // numpy writes no other keys
      }
      if (!consume(',') && !peek('}')) return std::nullopt;
    }
    if (!saw_descr || !saw_fortran_order || !saw_shape) return std::nullopt;
    return header;
  }

 private:
  void skip_spaces() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n')) ++position_;
  }
  bool peek(char expected) {
    skip_spaces();
    return position_ < text_.size() && text_[position_] == expected;
  }
  bool consume(char expected) {
    if (!peek(expected)) return false;
    ++position_;
    return true;
  }
  bool consume_word(std::string_view word) {
    skip_spaces();
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }

  std::optional<std::string> parse_string() {
    skip_spaces();
    if (position_ >= text_.size() || (text_[position_] != '\'' && text_[position_] != '"')) return std::nullopt;
    const char quote = text_[position_++];
    const size_t end = text_.find(quote, position_);
    if (end == std::string_view::npos) return std::nullopt;
    std::string value{text_.substr(position_, end - position_)};
    position_ = end + 1;
    return value;
  }

  std::optional<bool> parse_bool() {
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    return std::nullopt;
  }

  std::optional<std::vector<int64_t>> parse_int_tuple() {
    if (!consume('(')) return std::nullopt;
    std::vector<int64_t> values;
    while (!consume(')')) {
      skip_spaces();
      int64_t value = 0;
      const char* begin = text_.data() + position_;
      const char* end = text_.data() + text_.size();
      auto [stop, error] = std::from_chars(begin, end, value);
      if (error != std::errc{} || value < 0) return std::nullopt;
      position_ += static_cast<size_t>(stop - begin);
      consume_word("L");  // Python 2's numpy wrote long ints as 784L
      values.push_back(value);
      if (!consume(',') && !peek(')')) return std::nullopt;
    }
    return values;
  }

  std::string_view text_;
  size_t position_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Writing.

// Where the central directory will point for one entry already written.
struct WrittenEntry {
  std::string zip_name;
  uint16_t flags = 0;
  uint32_t crc = 0;
  uint32_t size = 0;
  uint32_t local_header_offset = 0;
};

uint16_t name_flags(const std::string& zip_name) {
  // Bit 11 tells unzip tools the name is UTF-8 rather than the old DOS code page.
  for (unsigned char c : zip_name) {
    if (c >= 0x80) return kFlagUtf8Name;
  }
  return 0;
}

void check_arrays_are_writable(std::span<const NamedArray> arrays, const std::string& path) {
  std::set<std::string> seen_names;
  for (const NamedArray& array : arrays) {
    if (array.name.empty()) throw ValueError("cannot write '" + path + "': an array has an empty name");
    if (array.name.size() + kNpySuffix.size() > 0xFFFF) {
      throw ValueError("cannot write '" + path + "': an array's name is longer than a zip entry name may be");
    }
    if (!seen_names.insert(array.name).second) {
      throw ValueError("cannot write '" + path + "': two arrays are named '" + array.name + "'");
    }
    if (static_cast<int64_t>(array.values.size()) != array.shape.element_count()) {
      throw ShapeError("cannot write '" + path + "': array '" + array.name + "' of shape " + array.shape.str() +
                       " needs " + std::to_string(array.shape.element_count()) + " values, got " +
                       std::to_string(array.values.size()));
    }
  }
  if (arrays.size() > kMaxZipEntries) {
    throw ValueError("cannot write '" + path + "': " + std::to_string(arrays.size()) +
                     " arrays is more than the 65535 entries a zip file holds without zip64");
  }
}

// Writes the whole zip to `file`; `path` is only for error messages.
void write_zip(AtomicFile& file, std::span<const NamedArray> arrays, const std::string& path) {
  std::vector<WrittenEntry> written;
  uint64_t offset = 0;
  for (const NamedArray& array : arrays) {
    WrittenEntry entry;
    entry.zip_name = array.name + std::string{kNpySuffix};
    entry.flags = name_flags(entry.zip_name);
    const std::string preamble = npy_preamble(array.shape);
    const size_t value_bytes = array.values.size() * sizeof(float);
    const uint64_t entry_size = preamble.size() + uint64_t{value_bytes};
    const uint64_t entry_end = offset + kLocalHeaderSize + entry.zip_name.size() + entry_size;
    if (entry_end > kMaxZipOffset) {
      throw FileError("cannot write '" + path + "': with array '" + array.name +
                      "' it would pass 4 GiB, the most a zip file holds without zip64");
    }
    entry.size = static_cast<uint32_t>(entry_size);
    entry.local_header_offset = static_cast<uint32_t>(offset);
    uLong crc = crc32_z(0, reinterpret_cast<const Bytef*>(preamble.data()), preamble.size());
    // Only with data: zlib treats a null buffer (an empty vector's) as "start over" and returns 0.
    if (value_bytes > 0) crc = crc32_z(crc, reinterpret_cast<const Bytef*>(array.values.data()), value_bytes);
    entry.crc = static_cast<uint32_t>(crc);

    std::string local_header;
    append_u32(local_header, kLocalHeaderSignature);
    append_u16(local_header, kZipVersion);
    append_u16(local_header, entry.flags);
    append_u16(local_header, kMethodStored);  // like numpy.savez: weights barely compress
    append_u16(local_header, kDosTime);
    append_u16(local_header, kDosDate);
    append_u32(local_header, entry.crc);
    append_u32(local_header, entry.size);  // compressed size
    append_u32(local_header, entry.size);  // uncompressed size
    append_u16(local_header, static_cast<uint16_t>(entry.zip_name.size()));
    append_u16(local_header, 0);  // no extra field
    local_header += entry.zip_name;

    file.write(local_header);
    file.write(preamble);
    file.write(array.values.data(), value_bytes);
    offset = entry_end;
    written.push_back(std::move(entry));
  }

  std::string directory;
  for (const WrittenEntry& entry : written) {
    append_u32(directory, kCentralHeaderSignature);
    append_u16(directory, kZipVersion);  // made by: MS-DOS attributes, zip 2.0
    append_u16(directory, kZipVersion);  // needed to extract
    append_u16(directory, entry.flags);
    append_u16(directory, kMethodStored);
    append_u16(directory, kDosTime);
    append_u16(directory, kDosDate);
    append_u32(directory, entry.crc);
    append_u32(directory, entry.size);
    append_u32(directory, entry.size);
    append_u16(directory, static_cast<uint16_t>(entry.zip_name.size()));
    append_u16(directory, 0);  // extra field length
    append_u16(directory, 0);  // comment length
    append_u16(directory, 0);  // disk where the entry starts
    append_u16(directory, 0);  // internal attributes
    append_u32(directory, 0);  // external attributes
    append_u32(directory, entry.local_header_offset);
    directory += entry.zip_name;
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
  file.write(directory);
  file.write(end_record);
}

// ---------------------------------------------------------------------------------------------
// Reading.

[[noreturn]] void fail_archive(const std::string& path, const std::string& problem) {
  throw FileError("cannot read .npz file '" + path + "': " + problem);
}

[[noreturn]] void fail_entry(const std::string& path, const std::string& zip_name, const std::string& problem) {
  throw FileError("cannot read entry '" + zip_name + "' of .npz file '" + path + "': " + problem);
}

// The whole file at once: weight files are small next to memory, and random access keeps the
// zip walk simple.
std::vector<unsigned char> read_file_bytes(const std::string& path) {
  std::error_code error;
  const uintmax_t file_size = std::filesystem::file_size(path, error);
  if (error) fail_archive(path, error.message());
  if (file_size > kMaxZipOffset) {
    fail_archive(path, "it is " + std::to_string(file_size) +
                           " bytes, over the 4 GiB that a zip file holds without zip64, which kiln does not read");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) fail_archive(path, std::strerror(errno));
  std::vector<unsigned char> bytes(static_cast<size_t>(file_size));
  file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<size_t>(file.gcount()) != bytes.size()) fail_archive(path, "reading it stopped early");
  return bytes;
}

// One record of the central directory.
struct DirectoryEntry {
  std::string zip_name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint32_t compressed_size = 0;
  uint32_t uncompressed_size = 0;
  uint32_t local_header_offset = 0;
};

// The central directory's records, in file order, checked to lie inside the file.
std::vector<DirectoryEntry> read_central_directory(std::span<const unsigned char> bytes, const std::string& path) {
  // The end record is the last 22 bytes plus a comment of up to 64 KiB: search back for it.
  if (bytes.size() < kEndRecordSize) {
    fail_archive(path, "it is " + std::to_string(bytes.size()) + " bytes, too short to be a zip file (truncated?)");
  }
  std::optional<size_t> end_record_offset;
  const size_t lowest_start = bytes.size() - kEndRecordSize > kMaxZipCommentSize
                                  ? bytes.size() - kEndRecordSize - kMaxZipCommentSize
                                  : 0;
  for (size_t start = bytes.size() - kEndRecordSize + 1; start-- > lowest_start;) {
    if (load_u32(&bytes[start]) == kEndRecordSignature) {
      end_record_offset = start;
      break;
    }
  }
  if (!end_record_offset) {
    fail_archive(path, "it has no zip end-of-central-directory record, so it is truncated or not a zip file");
  }
  const unsigned char* end_record = &bytes[*end_record_offset];
  const uint16_t this_disk = load_u16(end_record + 4);
  const uint16_t directory_disk = load_u16(end_record + 6);
  const uint16_t entry_count = load_u16(end_record + 10);
  const uint32_t directory_size = load_u32(end_record + 12);
  const uint32_t directory_offset = load_u32(end_record + 16);
  if (entry_count == kMaxZipEntries || directory_size == kZip64Marker || directory_offset == kZip64Marker) {
    fail_archive(path, "it is a zip64 archive (over 4 GiB or 65535 entries), which kiln does not read");
  }
  if (this_disk != 0 || directory_disk != 0) fail_archive(path, "it is a zip archive split over several disks");
  if (uint64_t{directory_offset} + directory_size > *end_record_offset) {
    fail_archive(path, "its central directory would run past the end of the file (truncated?)");
  }

  std::vector<DirectoryEntry> entries;
  size_t position = directory_offset;
  const size_t directory_end = size_t{directory_offset} + directory_size;
  for (int index = 0; index < entry_count; ++index) {
    if (position + kCentralHeaderSize > directory_end || load_u32(&bytes[position]) != kCentralHeaderSignature) {
      fail_archive(path, "its central directory is damaged at entry " + std::to_string(index + 1) + " of " +
                             std::to_string(entry_count));
    }
    const unsigned char* record = &bytes[position];
    DirectoryEntry entry;
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
      fail_archive(path, "its central directory is cut short at entry " + std::to_string(index + 1));
    }
    entry.zip_name.assign(reinterpret_cast<const char*>(record + kCentralHeaderSize), name_size);
    entries.push_back(std::move(entry));
    position += record_size;
  }
  return entries;
}

// The entry's bytes as stored in the file (compressed or not), located through its local header.
std::span<const unsigned char> stored_data(std::span<const unsigned char> bytes, const DirectoryEntry& entry,
                                           const std::string& path) {
  const size_t header_offset = entry.local_header_offset;
  if (uint64_t{header_offset} + kLocalHeaderSize > bytes.size() ||
      load_u32(&bytes[header_offset]) != kLocalHeaderSignature) {
    fail_entry(path, entry.zip_name, "its local header is missing or damaged (truncated file?)");
  }
  // The directory is the authority on sizes and CRC: numpy's writer leaves 0xFFFFFFFF and a
  // zip64 field in the local header, so only the name and extra lengths are taken from it.
  const size_t name_size = load_u16(&bytes[header_offset + 26]);
  const size_t extra_size = load_u16(&bytes[header_offset + 28]);
  const uint64_t data_offset = uint64_t{header_offset} + kLocalHeaderSize + name_size + extra_size;
  if (data_offset + entry.compressed_size > bytes.size()) {
    fail_entry(path, entry.zip_name,
               "its " + std::to_string(entry.compressed_size) + " bytes of data run past the end of the file (" +
                   std::to_string(bytes.size()) + " bytes); the file is truncated");
  }
  return bytes.subspan(static_cast<size_t>(data_offset), entry.compressed_size);
}

// Deflate cannot shrink data by more than about 1032 to 1 (a 258-byte match per 2 bits, at best):
// an entry that claims more is damaged or hostile, and is refused before anything is allocated.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kDeflateSlack = 64;  // a tiny entry's fixed costs (block headers, end code)

// Inflates a deflated entry's first `size` bytes (all of it when size is the uncompressed size).
// Zip stores raw deflate data, without zlib's header or checksum, hence the negative windowBits.
std::vector<unsigned char> inflate_entry(std::span<const unsigned char> compressed, const DirectoryEntry& entry,
                                         const std::string& path, size_t size) {
  std::vector<unsigned char> inflated(size);
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail_entry(path, entry.zip_name, "zlib could not start inflating");
  stream.next_in = const_cast<Bytef*>(compressed.data());  // zlib's API is not const-correct
  stream.avail_in = static_cast<uInt>(compressed.size());
  stream.next_out = inflated.data();
  stream.avail_out = static_cast<uInt>(inflated.size());
  const int status = inflate(&stream, Z_FINISH);
  const std::string zlib_message = stream.msg ? stream.msg : "";
  const uLong inflated_size = stream.total_out;
  inflateEnd(&stream);
  const bool whole = size == entry.uncompressed_size;
  // A prefix ends with the output full (Z_BUF_ERROR: there was more to come) or the stream's end.
  const bool prefix_done = !whole && inflated_size == size && (status == Z_BUF_ERROR || status == Z_STREAM_END);
  if ((whole && status != Z_STREAM_END) || (!whole && !prefix_done && status != Z_OK)) {
    fail_entry(path, entry.zip_name,
               "its deflated data does not inflate to the " + std::to_string(entry.uncompressed_size) +
                   " bytes the zip directory promises" + (zlib_message.empty() ? "" : " (zlib: " + zlib_message + ")"));
  }
  if (whole && inflated_size != entry.uncompressed_size) {
    fail_entry(path, entry.zip_name,
               "it inflates to " + std::to_string(inflated_size) + " bytes, but the zip directory promises " +
                   std::to_string(entry.uncompressed_size));
  }
  inflated.resize(inflated_size);
  return inflated;
}

// What a .npy file's preamble says: its array's shape, and where its data starts.
struct NpyLayout {
  Shape shape;
  int64_t element_count = 0;
  size_t data_offset = 0;
};

// The longest .npy preamble kiln reads. numpy itself refuses headers over 10,000 bytes unless told
// otherwise; version 1.0's uint16 length allows 65,535.
constexpr size_t kMaxNpyPreambleSize = kNpyVersion1PreambleSize + 2 + 0xFFFF;

// Reads the .npy preamble at the start of `npy` (the whole file, or its first bytes) and checks it
// against the entry's size, refusing anything that is not float32 in C order.
NpyLayout parse_npy_preamble(std::span<const unsigned char> npy, uint64_t npy_size, const DirectoryEntry& entry,
                             const std::string& path) {
  auto fail = [&](const std::string& problem) { fail_entry(path, entry.zip_name, problem); };

  if (npy.size() < kNpyVersion1PreambleSize ||
      std::string_view(reinterpret_cast<const char*>(npy.data()), kNpyMagic.size()) != kNpyMagic) {
    fail("it is not a .npy file (it does not start with \\x93NUMPY)");
  }
  const int major_version = npy[6], minor_version = npy[7];
  size_t header_size = 0, header_offset = 0;
  if (major_version == 1) {
    header_size = load_u16(&npy[8]);
    header_offset = kNpyVersion1PreambleSize;
  } else if (major_version == 2 || major_version == 3) {  // same header, uint32 length (3.0: UTF-8 text)
    if (npy.size() < kNpyVersion1PreambleSize + 2) fail("its .npy header is truncated");
    header_size = load_u32(&npy[8]);
    header_offset = kNpyVersion1PreambleSize + 2;
  } else {
    fail("it is .npy format version " + std::to_string(major_version) + "." + std::to_string(minor_version) +
         "; kiln reads versions 1.0 to 3.0");
  }
  if (header_offset + header_size > kMaxNpyPreambleSize) {
    fail("its .npy header claims " + std::to_string(header_size) + " bytes; kiln reads headers up to 65535 bytes");
  }
  if (header_offset + header_size > npy.size()) fail("its .npy header is truncated");
  const std::string_view header_text(reinterpret_cast<const char*>(npy.data() + header_offset), header_size);

  std::optional<NpyHeader> header = NpyHeaderParser(header_text).parse();
  if (!header) fail("its .npy header is not the dict numpy writes: " + std::string(header_text));
  if (header->descr != "<f4") {
    fail("it holds dtype '" + header->descr +
         "', but kiln reads only little-endian float32 ('<f4'); save array.astype(numpy.float32) instead");
  }
  if (header->fortran_order) fail("it is in Fortran order; save numpy.ascontiguousarray(array) instead");
  if (header->dims.size() > static_cast<size_t>(Shape::kMaxRank)) {
    fail("it has " + std::to_string(header->dims.size()) + " axes; kiln tensors have at most " +
         std::to_string(Shape::kMaxRank));
  }

  NpyLayout layout;
  layout.shape = Shape(std::span<const int64_t>(header->dims));
  layout.data_offset = header_offset + header_size;
  int64_t element_count = 1;
  for (int64_t dim : header->dims) {
    if (dim != 0 && element_count > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(sizeof(float)) / dim) {
      fail("its shape " + npy_shape_text(layout.shape) + " is impossibly large");
    }
    element_count *= dim;
  }
  layout.element_count = element_count;
  const uint64_t data_bytes = npy_size - layout.data_offset;
  const uint64_t expected_bytes = static_cast<uint64_t>(element_count) * sizeof(float);
  if (data_bytes != expected_bytes) {
    fail("its shape " + npy_shape_text(layout.shape) + " needs " + std::to_string(expected_bytes) +
         " bytes of float32 data, but it holds " + std::to_string(data_bytes) +
         (data_bytes < expected_bytes ? " (truncated)" : " (extra bytes at the end)"));
  }
  return layout;
}

void check_crc(std::span<const unsigned char> npy, const DirectoryEntry& entry, const std::string& path) {
  const uint32_t actual_crc = static_cast<uint32_t>(crc32_z(0, npy.data(), npy.size()));
  if (actual_crc != entry.crc) {
    fail_entry(path, entry.zip_name,
               "its CRC-32 is " + hex32(actual_crc) + " but the zip directory records " + hex32(entry.crc) +
                   ", so the data is corrupt");
  }
}

// One entry, located and its preamble read, before any of its data is copied or inflated.
struct LocatedEntry {
  const DirectoryEntry* entry;
  std::string name;                       // without ".npy"
  std::span<const unsigned char> stored;  // the bytes in the file, compressed or not
  NpyLayout layout;
};

LocatedEntry locate_entry(std::span<const unsigned char> bytes, const DirectoryEntry& entry, const std::string& path) {
  const std::string_view zip_name = entry.zip_name;
  if (zip_name.size() <= kNpySuffix.size() || !zip_name.ends_with(kNpySuffix)) {
    fail_entry(path, entry.zip_name, "it is not a .npy file (its name does not end in \".npy\")");
  }
  if (entry.flags & kFlagEncrypted) fail_entry(path, entry.zip_name, "it is encrypted");
  if (entry.compressed_size == kZip64Marker || entry.uncompressed_size == kZip64Marker ||
      entry.local_header_offset == kZip64Marker) {
    fail_entry(path, entry.zip_name, "it is a zip64 entry (over 4 GiB), which kiln does not read");
  }
  LocatedEntry located{&entry, std::string{zip_name.substr(0, zip_name.size() - kNpySuffix.size())},
                       stored_data(bytes, entry, path), {}};
  if (entry.method == kMethodStored) {
    if (entry.compressed_size != entry.uncompressed_size) {
      fail_entry(path, entry.zip_name, "it is stored uncompressed, yet its two sizes in the zip directory differ");
    }
    check_crc(located.stored, entry, path);  // first: damage is best reported as damage
    located.layout = parse_npy_preamble(located.stored, located.stored.size(), entry, path);
  } else if (entry.method == kMethodDeflated) {
    if (entry.uncompressed_size > uint64_t{entry.compressed_size} * kMaxDeflateRatio + kDeflateSlack) {
      fail_entry(path, entry.zip_name,
                 "the zip directory says its " + std::to_string(entry.compressed_size) + " deflated bytes hold " +
                     std::to_string(entry.uncompressed_size) + ", more than deflate can pack into them");
    }
    const size_t prefix_size = std::min<size_t>(entry.uncompressed_size, kMaxNpyPreambleSize);
    located.layout = parse_npy_preamble(inflate_entry(located.stored, entry, path, prefix_size), entry.uncompressed_size,
                                        entry, path);
  } else {
    fail_entry(path, entry.zip_name,
               "it is compressed with zip method " + std::to_string(entry.method) +
                   "; kiln reads stored (0) and deflated (8) entries, as numpy writes");
  }
  return located;
}

// The entry's array: inflated if need be, its CRC checked, its data copied out.
NamedArray read_entry(LocatedEntry& located, const std::string& path) {
  const DirectoryEntry& entry = *located.entry;
  std::vector<unsigned char> inflated;
  std::span<const unsigned char> npy = located.stored;
  if (entry.method == kMethodDeflated) {
    inflated = inflate_entry(located.stored, entry, path, entry.uncompressed_size);
    npy = inflated;
    check_crc(npy, entry, path);
  }
  NamedArray array{std::move(located.name), located.layout.shape, {}};
  array.values.resize(static_cast<size_t>(located.layout.element_count));
  // Guarded because memcpy from an empty vector's null data() is undefined, even for 0 bytes.
  if (!array.values.empty()) {
    std::memcpy(array.values.data(), npy.data() + located.layout.data_offset, array.values.size() * sizeof(float));
  }
  return array;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void write_npz(const std::string& path, std::span<const NamedArray> arrays) {
  check_arrays_are_writable(arrays, path);
  AtomicFile file(path);
  write_zip(file, arrays, path);
  file.commit();
}

std::vector<NamedArray> read_npz(const std::string& path, const ArrayCheck& check) {
  const std::vector<unsigned char> bytes = read_file_bytes(path);
  const std::vector<DirectoryEntry> entries = read_central_directory(bytes, path);
  // Every entry's name, type and shape first, so a file that is not what the caller expects is
  // refused before any of its arrays is inflated or copied.
  std::vector<LocatedEntry> located;
  for (const DirectoryEntry& entry : entries) {
    located.push_back(locate_entry(bytes, entry, path));
    if (check) check(located.back().name, located.back().layout.shape);
  }
  std::vector<NamedArray> arrays;
  for (LocatedEntry& entry : located) arrays.push_back(read_entry(entry, path));
  return arrays;
}

}  // namespace kiln::io
