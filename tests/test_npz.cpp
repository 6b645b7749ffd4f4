// Tests of kiln::io::write_npz / read_npz: exact round trips, the bytes on disk checked against
// the zip and .npy formats by hand, archives built here the way numpy builds them (deflated,
// zip64 local headers), and every kind of damaged file giving a FileError that names it.
#include "kiln/io/npz.hpp"

#include "kiln/error.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"

#include "temporary_directory.hpp"
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::testing::contains;

using kiln::Shape;
using kiln::io::NamedArray;
using kiln::io::read_npz;
using kiln::io::write_npz;
using Bytes = std::vector<unsigned char>;
using kiln::testing::TemporaryDirectory;

Bytes read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

uint16_t u16_at(const Bytes& bytes, size_t offset) { return static_cast<uint16_t>(bytes[offset] | bytes[offset + 1] << 8); }
uint32_t u32_at(const Bytes& bytes, size_t offset) {
  return uint32_t{bytes[offset]} | uint32_t{bytes[offset + 1]} << 8 | uint32_t{bytes[offset + 2]} << 16 |
         uint32_t{bytes[offset + 3]} << 24;
}
void put_u16(Bytes& out, uint32_t value) {
  out.push_back(static_cast<unsigned char>(value & 0xFF));
  out.push_back(static_cast<unsigned char>((value >> 8) & 0xFF));
}
void put_u32(Bytes& out, uint32_t value) {
  put_u16(out, value & 0xFFFF);
  put_u16(out, value >> 16);
}
void put_u64(Bytes& out, uint64_t value) {
  put_u32(out, static_cast<uint32_t>(value));
  put_u32(out, static_cast<uint32_t>(value >> 32));
}
void put_text(Bytes& out, const std::string& text) { out.insert(out.end(), text.begin(), text.end()); }

// The message of the FileError that `action` throws, or "" if it throws none.
template <class Action>
std::string file_error_message(Action action) {
  try {
    action();
  } catch (const kiln::FileError& error) {
    return error.what();
  }
  return "";
}


// A .npy file written independently of kiln: version 1.0, dict padded to a 64-byte boundary.
Bytes make_npy(const std::string& dict, const Bytes& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  Bytes npy;
  put_text(npy, std::string("\x93NUMPY\x01\x00", 8));
  put_u16(npy, static_cast<uint32_t>(header.size()));
  put_text(npy, header);
  npy.insert(npy.end(), data.begin(), data.end());
  return npy;
}

Bytes float_bytes(const std::vector<float>& values) {
  Bytes bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

Bytes deflate_raw(const Bytes& input) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes output(deflateBound(&stream, static_cast<uLong>(input.size())));
  stream.next_in = const_cast<Bytef*>(input.data());
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = output.data();
  stream.avail_out = static_cast<uInt>(output.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  output.resize(stream.total_out);
  deflateEnd(&stream);
  return output;
}

// Builds a zip file entry by entry, the way Python's zipfile module does.
class ZipBuilder {
 public:
  enum class Method : uint16_t { kStored = 0, kDeflated = 8 };

  // numpy.savez opens each entry with force_zip64=True: the local header then says 0xFFFFFFFF
  // for both sizes and carries the real ones in a zip64 extra field. `numpy_style` mimics that.
  void add(const std::string& name, const Bytes& contents, Method method, bool numpy_style = false) {
    const Bytes data = method == Method::kDeflated ? deflate_raw(contents) : contents;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, contents.data(), static_cast<uInt>(contents.size())));
    const uint32_t local_header_offset = static_cast<uint32_t>(body_.size());

    put_u32(body_, 0x04034b50);
    put_u16(body_, numpy_style ? 45 : 20);
    put_u16(body_, 0);
    put_u16(body_, static_cast<uint16_t>(method));
    put_u16(body_, 0);
    put_u16(body_, 0x21);
    put_u32(body_, crc);
    put_u32(body_, numpy_style ? 0xFFFFFFFF : static_cast<uint32_t>(data.size()));
    put_u32(body_, numpy_style ? 0xFFFFFFFF : static_cast<uint32_t>(contents.size()));
    put_u16(body_, static_cast<uint32_t>(name.size()));
    put_u16(body_, numpy_style ? 20 : 0);
    put_text(body_, name);
    if (numpy_style) {
      put_u16(body_, 0x0001);  // zip64 extended information
      put_u16(body_, 16);
      put_u64(body_, contents.size());
      put_u64(body_, data.size());
    }
    body_.insert(body_.end(), data.begin(), data.end());

    put_u32(directory_, 0x02014b50);
    put_u16(directory_, 0x0314);  // made by: Unix, zip 2.0
    put_u16(directory_, 20);
    put_u16(directory_, 0);
    put_u16(directory_, static_cast<uint16_t>(method));
    put_u16(directory_, 0);
    put_u16(directory_, 0x21);
    put_u32(directory_, crc);
    put_u32(directory_, static_cast<uint32_t>(data.size()));
    put_u32(directory_, static_cast<uint32_t>(contents.size()));
    put_u16(directory_, static_cast<uint32_t>(name.size()));
    put_u16(directory_, 0);
    put_u16(directory_, 0);
    put_u16(directory_, 0);
    put_u16(directory_, 0);
    put_u32(directory_, 0600u << 16);
    put_u32(directory_, local_header_offset);
    put_text(directory_, name);
    ++entry_count_;
  }

  Bytes finish() const {
    Bytes zip = body_;
    zip.insert(zip.end(), directory_.begin(), directory_.end());
    put_u32(zip, 0x06054b50);
    put_u16(zip, 0);
    put_u16(zip, 0);
    put_u16(zip, entry_count_);
    put_u16(zip, entry_count_);
    put_u32(zip, static_cast<uint32_t>(directory_.size()));
    put_u32(zip, static_cast<uint32_t>(body_.size()));
    put_u16(zip, 0);
    return zip;
  }

 private:
  Bytes body_;
  Bytes directory_;
  uint16_t entry_count_ = 0;
};

// Several arrays of ranks 0 to 3, names with '/', and values whose bits must survive exactly.
std::vector<NamedArray> sample_arrays() {
  const float denormal = std::numeric_limits<float>::denorm_min();
  const float infinity = std::numeric_limits<float>::infinity();
  return {
      {"step", Shape{}, {42.5f}},
      {"dense/bias", Shape{3}, {-0.0f, denormal, infinity}},
      {"dense/kernel", Shape{2, 3}, {1.0f, -2.5f, 3.25f, 1e-30f, 1e30f, 0.1f}},
      {"conv/block_1/filters", Shape{2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}},
      {"empty", Shape{0, 4}, {}},
  };
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void check_same_arrays(const std::vector<NamedArray>& actual, const std::vector<NamedArray>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(expected[i].name);
    CHECK(actual[i].name == expected[i].name);
    CHECK(actual[i].shape == expected[i].shape);
    CHECK(same_bits(actual[i].values, expected[i].values));
  }
}

}  // namespace

TEST_CASE("npz: write then read gives back every array exactly, in order") {
  TemporaryDirectory directory;
  const std::string path = directory.file("weights.npz");
  const std::vector<NamedArray> arrays = sample_arrays();
  write_npz(path, arrays);
  check_same_arrays(read_npz(path), arrays);

  SUBCASE("writing again replaces the file and leaves no temporary file behind") {
    const std::vector<NamedArray> fewer = {{"only", Shape{2}, {7.0f, 8.0f}}};
    write_npz(path, fewer);
    check_same_arrays(read_npz(path), fewer);
    CHECK(directory.listing() == std::vector<std::string>{"weights.npz"});
  }
  SUBCASE("an empty archive is fine too") {
    write_npz(path, {});
    CHECK(read_npz(path).empty());
  }
}

TEST_CASE("npz: the written bytes are a plain zip of 64-byte-aligned .npy files") {
  TemporaryDirectory directory;
  const std::string path = directory.file("weights.npz");
  const std::vector<NamedArray> arrays = sample_arrays();
  write_npz(path, arrays);
  const Bytes zip = read_bytes(path);

  // End-of-central-directory record: the last 22 bytes, as no comment is written.
  REQUIRE(zip.size() > 22);
  const size_t end_record = zip.size() - 22;
  CHECK(u32_at(zip, end_record) == 0x06054b50);
  CHECK(u16_at(zip, end_record + 8) == arrays.size());
  CHECK(u16_at(zip, end_record + 10) == arrays.size());
  const uint32_t directory_size = u32_at(zip, end_record + 12);
  const uint32_t directory_offset = u32_at(zip, end_record + 16);
  CHECK(directory_offset + directory_size == end_record);

  // Walk the central directory to each local header and parse its .npy by hand.
  size_t record = directory_offset;
  const std::vector<std::string> expected_shapes = {"()", "(3,)", "(2, 3)", "(2, 2, 2)", "(0, 4)"};
  for (size_t i = 0; i < arrays.size(); ++i) {
    CAPTURE(arrays[i].name);
    REQUIRE(u32_at(zip, record) == 0x02014b50);
    CHECK(u16_at(zip, record + 10) == 0);  // stored, as numpy.savez does
    const uint32_t size = u32_at(zip, record + 20);
    CHECK(u32_at(zip, record + 24) == size);
    const uint16_t name_size = u16_at(zip, record + 28);
    const std::string name(zip.begin() + static_cast<long>(record + 46),
                           zip.begin() + static_cast<long>(record + 46 + name_size));
    CHECK(name == arrays[i].name + ".npy");
    const uint32_t local_header = u32_at(zip, record + 42);
    REQUIRE(u32_at(zip, local_header) == 0x04034b50);
    const size_t npy_offset = local_header + 30 + u16_at(zip, local_header + 26) + u16_at(zip, local_header + 28);
    const Bytes npy(zip.begin() + static_cast<long>(npy_offset),
                    zip.begin() + static_cast<long>(npy_offset + size));
    CHECK(static_cast<uint32_t>(crc32(0, npy.data(), static_cast<uInt>(npy.size()))) == u32_at(zip, record + 16));

    REQUIRE(npy.size() >= 10);
    CHECK(std::string(npy.begin(), npy.begin() + 8) == std::string("\x93NUMPY\x01\x00", 8));
    const size_t header_size = u16_at(npy, 8);
    CHECK((10 + header_size) % 64 == 0);
    const std::string header(npy.begin() + 10, npy.begin() + 10 + static_cast<long>(header_size));
    CHECK(header.back() == '\n');
    CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': " + expected_shapes[i] + ", }", 0) == 0);
    CHECK(npy.size() - 10 - header_size == arrays[i].values.size() * sizeof(float));
    record += 46 + name_size + u16_at(zip, record + 30) + u16_at(zip, record + 32);
  }
}

TEST_CASE("npz: the .npy header matches numpy's byte for byte") {
  TemporaryDirectory directory;
  const std::string path = directory.file("kernel.npz");
  write_npz(path, std::vector<NamedArray>{{"k", Shape{784, 128}, std::vector<float>(784 * 128)}});
  const Bytes zip = read_bytes(path);
  const size_t npy_offset = 30 + std::string("k.npy").size();
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }";
  const std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(117 - dict.size(), ' ') + "\n";
  CHECK(std::string(zip.begin() + npy_offset, zip.begin() + npy_offset + 128) == expected);
}

TEST_CASE("npz: entries written like numpy.savez_compressed (deflated, zip64 local headers) read back") {
  TemporaryDirectory directory;
  const std::string path = directory.file("compressed.npz");
  const std::vector<float> kernel = {1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const std::vector<float> bias = {0.5f, -0.5f};
  ZipBuilder zip;
  zip.add("layer/kernel.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", float_bytes(kernel)),
          ZipBuilder::Method::kDeflated, /*numpy_style=*/true);
  zip.add("layer/bias.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", float_bytes(bias)),
          ZipBuilder::Method::kStored, /*numpy_style=*/true);
  zip.add("scalar.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", float_bytes({3.0f})),
          ZipBuilder::Method::kDeflated);
  write_bytes(path, zip.finish());

  const std::vector<NamedArray> arrays = read_npz(path);
  check_same_arrays(arrays, {{"layer/kernel", Shape{4, 4}, kernel}, {"layer/bias", Shape{2}, bias}, {"scalar", Shape{}, {3.0f}}});
}

TEST_CASE("npz: damaged archives are FileErrors naming the file") {
  TemporaryDirectory directory;
  const std::string good_path = directory.file("good.npz");
  write_npz(good_path, sample_arrays());
  const Bytes good = read_bytes(good_path);
  const std::string path = directory.file("damaged.npz");

  SUBCASE("a missing file") {
    const std::string missing = directory.file("missing.npz");
    CHECK(contains(file_error_message([&] { read_npz(missing); }), missing));
  }
  SUBCASE("every truncation of the file") {
    for (size_t size = 0; size < good.size(); ++size) {
      CAPTURE(size);
      write_bytes(path, Bytes(good.begin(), good.begin() + static_cast<long>(size)));
      CHECK(contains(file_error_message([&] { read_npz(path); }), path));
    }
  }
  SUBCASE("a flipped data byte fails the CRC check, naming the entry") {
    ZipBuilder zip;
    zip.add("w.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", float_bytes({1, 2})),
            ZipBuilder::Method::kStored);
    Bytes damaged = zip.finish();
    damaged[30 + 5 + 64 + 1] ^= 0x01;  // local header, name, .npy header, then into the data
    write_bytes(path, damaged);
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "'w.npy'"));
    CHECK(contains(message, "CRC-32"));
  }
  SUBCASE("any single flipped byte is a FileError or harmless, never a crash") {
    for (size_t offset = 0; offset < good.size(); ++offset) {
      CAPTURE(offset);
      Bytes damaged = good;
      damaged[offset] ^= 0xFF;
      write_bytes(path, damaged);
      try {
        read_npz(path);
      } catch (const kiln::FileError& error) {
        CHECK(contains(error.what(), path));
      }
    }
  }
  SUBCASE("a file that is not a zip at all") {
    write_bytes(path, Bytes(100, 'x'));
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "not a zip"));
  }
}

TEST_CASE("npz: arrays kiln cannot hold are refused, naming file and entry") {
  TemporaryDirectory directory;
  const std::string path = directory.file("other.npz");

  SUBCASE("float64") {
    ZipBuilder zip;
    zip.add("weights/w.npy", make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", Bytes(16)),
            ZipBuilder::Method::kStored);
    write_bytes(path, zip.finish());
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "'weights/w.npy'"));
    CHECK(contains(message, "'<f8'"));
  }
  SUBCASE("Fortran order") {
    ZipBuilder zip;
    zip.add("w.npy", make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", Bytes(16)),
            ZipBuilder::Method::kDeflated);
    write_bytes(path, zip.finish());
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "Fortran"));
  }
  SUBCASE("data shorter than the shape") {
    ZipBuilder zip;
    zip.add("w.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", Bytes(8)),
            ZipBuilder::Method::kStored);
    write_bytes(path, zip.finish());
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "truncated"));
  }
  SUBCASE("an entry that is not .npy") {
    ZipBuilder zip;
    zip.add("README.txt", Bytes(5, 'a'), ZipBuilder::Method::kStored);
    write_bytes(path, zip.finish());
    CHECK(contains(file_error_message([&] { read_npz(path); }), "'README.txt'"));
  }
}

uint32_t load_u32_for_test(const unsigned char* bytes) {
  return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}

// The peak resident memory `action` adds, in MiB, measured in a child process so the parent's
// history does not hide it; -1 if the action did not throw a kiln::FileError or ShapeError.
long peak_mebibytes_added_by_refusal(const std::function<void()>& action) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    try {
      action();
    } catch (const kiln::FileError&) {
    } catch (const kiln::ShapeError&) {
    } catch (...) {
      ::_exit(255);
    }
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    ::_exit(static_cast<int>(std::min<long>((after.ru_maxrss - before.ru_maxrss) / 1024, 254)));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) return -1;
  return WEXITSTATUS(status);
}

TEST_CASE("npz: sizes the zip directory declares are checked before anything is allocated") {
  TemporaryDirectory directory;
  const std::string path = directory.file("hostile.npz");
  SUBCASE("a tiny file whose directory declares a 4 GiB deflated entry") {
    ZipBuilder zip;
    zip.add("w.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", float_bytes({1, 2})),
            ZipBuilder::Method::kDeflated);
    Bytes hostile = zip.finish();
    // The central directory's uncompressed size sits 24 bytes into its one record, which starts
    // where the end record (the last 22 bytes) says.
    const size_t directory_offset = load_u32_for_test(&hostile[hostile.size() - 22 + 16]);
    for (int byte = 0; byte < 4; ++byte) hostile[directory_offset + 24 + byte] = 0xFE;
    write_bytes(path, hostile);
    CHECK(hostile.size() < 300);
    const std::string message = file_error_message([&] { read_npz(path); });
    CHECK(contains(message, "'w.npy'"));
    CHECK(contains(message, "more than deflate can pack"));
    CHECK(peak_mebibytes_added_by_refusal([&] { read_npz(path); }) < 16);
  }
  SUBCASE("a deflate bomb is refused by its names and shapes before it is inflated") {
    // 64 MiB of zeros deflate to about 64 KB: a legal archive, but not the arrays the reader
    // expects. Its header says so in its first bytes.
    const int64_t floats = int64_t{16} << 20;
    ZipBuilder zip;
    zip.add("other/kernel.npy",
            make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(floats) + ",), }",
                     Bytes(static_cast<size_t>(floats) * 4, 0)),
            ZipBuilder::Method::kDeflated);
    write_bytes(path, zip.finish());
    CHECK(std::filesystem::file_size(path) < 1'000'000);
    const auto expect_dense = [](const std::string& name, const Shape&) {
      if (name != "dense/kernel") throw kiln::FileError("unexpected array '" + name + "'");
    };
    CHECK_THROWS_WITH_AS(read_npz(path, expect_dense), "unexpected array 'other/kernel'", kiln::FileError);
    CHECK(peak_mebibytes_added_by_refusal([&] { read_npz(path, expect_dense); }) < 16);
    // Read without a check, it is what it says: 64 MiB of zeros.
    const std::vector<NamedArray> arrays = read_npz(path);
    CHECK(arrays.front().shape == Shape{floats});
  }
}

TEST_CASE("npz: a failed write leaves neither the file nor a temporary behind") {
  TemporaryDirectory directory;
  const std::string path = directory.file("weights.npz");
  const std::vector<NamedArray> mismatched = {{"w", Shape{2, 2}, {1.0f, 2.0f, 3.0f}}};
  CHECK_THROWS_AS(write_npz(path, mismatched), kiln::ShapeError);
  const std::vector<NamedArray> repeated = {{"w", Shape{1}, {1.0f}}, {"w", Shape{1}, {2.0f}}};
  CHECK_THROWS_AS(write_npz(path, repeated), kiln::ValueError);
  CHECK(directory.listing().empty());

  const std::string unreachable = directory.file("no/such/directory/weights.npz");
  CHECK(contains(file_error_message([&] { write_npz(unreachable, sample_arrays()); }), unreachable));
  CHECK(directory.listing().empty());
}

TEST_CASE("npz: numpy reads what kiln writes (when python3 has numpy)") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: python3 with numpy is not available");
    return;
  }
  TemporaryDirectory directory;
  const std::string path = directory.file("weights.npz");
  write_npz(path, sample_arrays());
  const std::string script =
      "import numpy, sys; z = numpy.load(sys.argv[1]); "
      "assert list(z.keys()) == ['step', 'dense/bias', 'dense/kernel', 'conv/block_1/filters', 'empty'], list(z.keys()); "
      "assert z['dense/kernel'].dtype == numpy.float32; "
      "assert z['dense/kernel'].shape == (2, 3) and z['step'].shape == () and z['empty'].shape == (0, 4); "
      "assert z['dense/kernel'][0, 2] == 3.25 and z['conv/block_1/filters'][1, 1, 1] == 8";
  CHECK(std::system(("/usr/bin/python3 -c \"" + script + "\" '" + path + "'").c_str()) == 0);
}
