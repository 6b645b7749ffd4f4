// .npz reading and writing: one .npy file per array (numpy/lib/format.py), in a zip (zip.hpp).
#include "kiln/io/npz.hpp"

#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/io/zip.hpp"
#include "little_endian.hpp"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

namespace kiln::io {
namespace {

// Array data is copied to and from the file as it lies in memory, so the float32 bytes are
// little-endian ('<f4') only on a little-endian machine; every machine kiln targets is one.
static_assert(std::endian::native == std::endian::little, "kiln's .npz code assumes a little-endian machine");

using namespace little_endian;

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
NpyLayout parse_npy_preamble(std::span<const unsigned char> npy, uint64_t npy_size, const ZipReader& zip,
                             const ZipReader::Entry& entry) {
  auto fail = [&](const std::string& problem) { zip.fail_entry(entry, problem); };

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

// ---------------------------------------------------------------------------------------------
// Writing and reading whole archives.

// Each array as a stored "<name>.npy": its preamble, then its floats as they lie in memory.
void write_arrays(std::span<const NamedArray> arrays, const ByteWriter& write, const std::string& path) {
  std::set<std::string_view> seen_names;
  for (const NamedArray& array : arrays) {
    if (array.name.empty()) throw ValueError("cannot write '" + path + "': an array has an empty name");
    if (!seen_names.insert(array.name).second) {
      throw ValueError("cannot write '" + path + "': two arrays are named '" + array.name + "'");
    }
    if (static_cast<int64_t>(array.values.size()) != array.shape.element_count()) {
      throw ShapeError("cannot write '" + path + "': array '" + array.name + "' of shape " + array.shape.str() +
                       " needs " + std::to_string(array.shape.element_count()) + " values, got " +
                       std::to_string(array.values.size()));
    }
  }
  std::vector<std::string> preambles;
  preambles.reserve(arrays.size());
  std::vector<ZipEntryToWrite> entries;
  for (const NamedArray& array : arrays) {
    const std::string& preamble = preambles.emplace_back(npy_preamble(array.shape));
    entries.push_back({array.name + std::string{kNpySuffix},
                       {{reinterpret_cast<const unsigned char*>(preamble.data()), preamble.size()},
                        {reinterpret_cast<const unsigned char*>(array.values.data()), array.values.size() * sizeof(float)}}});
  }
  write_zip(entries, write, path);
}

// One entry, its preamble read, before any of its data is copied or inflated.
struct LocatedEntry {
  const ZipReader::Entry* entry;
  std::string name;                         // without ".npy"
  std::span<const unsigned char> contents;  // a stored entry's whole .npy, CRC checked; empty if deflated
  NpyLayout layout;
};

LocatedEntry locate_entry(const ZipReader& zip, const ZipReader::Entry& entry) {
  const std::string_view zip_name = entry.name;
  if (zip_name.size() <= kNpySuffix.size() || !zip_name.ends_with(kNpySuffix)) {
    zip.fail_entry(entry, "it is not a .npy file (its name does not end in \".npy\")");
  }
  LocatedEntry located{&entry, std::string{zip_name.substr(0, zip_name.size() - kNpySuffix.size())}, {}, {}};
  if (!entry.deflated()) {
    std::vector<unsigned char> unused;  // a stored entry is viewed in place
    located.contents = zip.contents(entry, unused);  // the CRC first: damage is best reported as damage
    located.layout = parse_npy_preamble(located.contents, located.contents.size(), zip, entry);
  } else {
    located.layout = parse_npy_preamble(zip.prefix(entry, kMaxNpyPreambleSize), entry.uncompressed_size, zip, entry);
  }
  return located;
}

// The entry's array: inflated if need be, its CRC checked, its data copied out.
NamedArray read_entry(LocatedEntry& located, const ZipReader& zip) {
  std::vector<unsigned char> inflated;
  std::span<const unsigned char> npy = located.contents;
  if (npy.empty()) npy = zip.contents(*located.entry, inflated);
  NamedArray array{std::move(located.name), located.layout.shape, {}};
  array.values.resize(static_cast<size_t>(located.layout.element_count));
  // Guarded because memcpy from an empty vector's null data() is undefined, even for 0 bytes.
  if (!array.values.empty()) {
    std::memcpy(array.values.data(), npy.data() + located.layout.data_offset, array.values.size() * sizeof(float));
  }
  return array;
}

std::vector<NamedArray> read_arrays(const ZipReader& zip, const ArrayCheck& check) {
  // Every entry's name, type and shape first, so a file that is not what the caller expects is
  // refused before any of its arrays is inflated or copied.
  std::vector<LocatedEntry> located;
  for (const ZipReader::Entry& entry : zip.entries()) {
    located.push_back(locate_entry(zip, entry));
    if (check) check(located.back().name, located.back().layout.shape);
  }
  std::vector<NamedArray> arrays;
  for (LocatedEntry& entry : located) arrays.push_back(read_entry(entry, zip));
  return arrays;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void write_npz(const std::string& path, std::span<const NamedArray> arrays) {
  AtomicFile file(path);
  write_arrays(arrays, [&](std::span<const unsigned char> bytes) { file.write(bytes.data(), bytes.size()); }, path);
  file.commit();
}

std::vector<unsigned char> npz_bytes(std::span<const NamedArray> arrays, const std::string& name) {
  std::vector<unsigned char> out;
  write_arrays(arrays, [&](std::span<const unsigned char> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); },
               name);
  return out;
}

std::vector<NamedArray> read_npz(const std::string& path, const ArrayCheck& check) {
  const std::vector<unsigned char> bytes = read_file_bytes(path, ".npz file");
  return read_arrays(ZipReader(bytes, path, ".npz file"), check);
}

std::vector<NamedArray> read_npz_bytes(std::span<const unsigned char> bytes, const std::string& name,
                                       const ArrayCheck& check) {
  return read_arrays(ZipReader(bytes, name, ".npz file"), check);
}

}  // namespace kiln::io
