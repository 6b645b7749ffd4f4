// Tests of kiln::datasets::read_idx / load_idx on small IDX files written here, plain and
// gzipped; each malformed file must give a FileError naming it and the fact that is wrong.
// If Debian's Fashion-MNIST is installed, it is loaded once and checked too.
#include "kiln/datasets/idx.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"

#include "temporary_directory.hpp"
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::testing::contains;

using kiln::Shape;
using kiln::datasets::load_idx;
using kiln::datasets::read_idx;
using Bytes = std::vector<uint8_t>;
using kiln::testing::TemporaryDirectory;

// An IDX file: magic 0, 0, type, rank; big-endian uint32 dims; then `data` as given (which
// the tests make too short or too long on purpose).
Bytes make_idx(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(dim >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

Bytes counting_bytes(size_t count, uint8_t first = 0) {
  Bytes bytes(count);
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(first + i);
  return bytes;
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_file_for_test(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

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


// Writes an MNIST-layout directory: `train_count` and `test_count` images of rows x cols
// (pixel i of the whole file is i mod 256) and labels i mod 10. Train files are plain, test
// files gzipped, so load_idx sees both kinds.
void write_mnist_like(const TemporaryDirectory& directory, uint32_t train_count, uint32_t train_label_count,
                      uint32_t test_count, uint32_t rows, uint32_t cols) {
  auto labels = [](uint32_t count) {
    Bytes bytes(count);
    for (uint32_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(i % 10);
    return bytes;
  };
  write_plain(directory.file("train-images-idx3-ubyte"),
              make_idx({train_count, rows, cols}, counting_bytes(size_t{train_count} * rows * cols)));
  write_plain(directory.file("train-labels-idx1-ubyte"), make_idx({train_label_count}, labels(train_label_count)));
  write_gzip(directory.file("t10k-images-idx3-ubyte.gz"),
             make_idx({test_count, rows, cols}, counting_bytes(size_t{test_count} * rows * cols)));
  write_gzip(directory.file("t10k-labels-idx1-ubyte.gz"), make_idx({test_count}, labels(test_count)));
}

}  // namespace

TEST_CASE("idx: plain and gzipped files read back with their shape and bytes") {
  TemporaryDirectory directory;
  const Bytes images = counting_bytes(2 * 3 * 4, 250);  // wraps past 255 to check unsigned bytes

  SUBCASE("plain, rank 3") {
    const std::string path = directory.file("images-idx3-ubyte");
    write_plain(path, make_idx({2, 3, 4}, images));
    const kiln::datasets::IdxArray array = read_idx(path);
    CHECK(array.shape == Shape{2, 3, 4});
    CHECK(array.bytes == images);
  }
  SUBCASE("gzipped, rank 3") {
    const std::string path = directory.file("images-idx3-ubyte.gz");
    write_gzip(path, make_idx({2, 3, 4}, images));
    const kiln::datasets::IdxArray array = read_idx(path);
    CHECK(array.shape == Shape{2, 3, 4});
    CHECK(array.bytes == images);
  }
  SUBCASE("ranks 1 and 4") {
    const std::string labels_path = directory.file("labels-idx1-ubyte");
    write_plain(labels_path, make_idx({5}, {9, 0, 3, 255, 1}));
    CHECK(read_idx(labels_path).shape == Shape{5});
    CHECK(read_idx(labels_path).bytes == Bytes{9, 0, 3, 255, 1});
    const std::string volume_path = directory.file("volume-idx4-ubyte");
    write_plain(volume_path, make_idx({1, 2, 3, 4}, images));
    CHECK(read_idx(volume_path).shape == Shape{1, 2, 3, 4});
  }
  SUBCASE("zero samples") {
    const std::string path = directory.file("empty-idx3-ubyte");
    write_plain(path, make_idx({0, 28, 28}, {}));
    CHECK(read_idx(path).shape == Shape{0, 28, 28});
    CHECK(read_idx(path).bytes.empty());
  }
}

TEST_CASE("idx: malformed files are FileErrors naming the file and what is wrong") {
  TemporaryDirectory directory;
  const std::string path = directory.file("bad-idx3-ubyte");

  SUBCASE("a missing file") {
    CHECK(contains(file_error_message([&] { read_idx(path); }), path));
  }
  SUBCASE("a type byte other than unsigned byte") {
    write_plain(path, make_idx({2}, Bytes(8), /*type=*/0x0D));  // 0x0D is IDX's float32
    const std::string message = file_error_message([&] { read_idx(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "0x00000d01"));  // the magic number found
    CHECK(contains(message, "0x08"));        // the type expected
  }
  SUBCASE("nonzero leading bytes") {
    write_plain(path, {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 0});
    const std::string message = file_error_message([&] { read_idx(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "0x12340801"));
    CHECK(contains(message, "first two bytes"));
  }
  SUBCASE("a rank outside 1..4") {
    write_plain(path, {0, 0, 0x08, 0x05});
    CHECK(contains(file_error_message([&] { read_idx(path); }), "rank byte is 5"));
  }
  SUBCASE("a file shorter than its magic number or header") {
    write_plain(path, {0, 0});
    CHECK(contains(file_error_message([&] { read_idx(path); }), "truncated"));
    write_plain(path, {0, 0, 0x08, 0x03, 0, 0, 0, 2});
    const std::string message = file_error_message([&] { read_idx(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "needs 16 bytes"));
  }
  SUBCASE("data shorter than the header says, plain and gzipped") {
    for (const std::string& truncated_path : {path, path + ".gz"}) {
      CAPTURE(truncated_path);
      const Bytes idx = make_idx({2, 3, 3}, Bytes(10));
      if (truncated_path.ends_with(".gz")) write_gzip(truncated_path, idx); else write_plain(truncated_path, idx);
      const std::string message = file_error_message([&] { read_idx(truncated_path); });
      CHECK(contains(message, truncated_path));
      CHECK(contains(message, "18 bytes"));
      CHECK(contains(message, "only 10"));
    }
  }
  SUBCASE("a gzip file cut short") {
    const std::string gzip_path = path + ".gz";
    write_gzip(gzip_path, make_idx({100, 10, 10}, counting_bytes(10000)));
    std::filesystem::resize_file(gzip_path, std::filesystem::file_size(gzip_path) / 2);
    const std::string message = file_error_message([&] { read_idx(gzip_path); });
    CHECK(contains(message, gzip_path));
    CHECK(contains(message, "truncated"));
  }
  SUBCASE("a gzip file without its trailer, or with a wrong CRC") {
    const std::string gzip_path = path + ".gz";
    for (const int cut : {8, 4, 1}) {
      CAPTURE(cut);
      write_gzip(gzip_path, make_idx({10, 2, 2}, counting_bytes(40)));
      std::filesystem::resize_file(gzip_path, std::filesystem::file_size(gzip_path) - static_cast<uintmax_t>(cut));
      const std::string message = file_error_message([&] { read_idx(gzip_path); });
      CHECK(contains(message, gzip_path));
      CHECK(contains(message, "ends before its checksum"));
    }
    write_gzip(gzip_path, make_idx({10, 2, 2}, counting_bytes(40)));
    Bytes bytes = read_file_for_test(gzip_path);
    bytes[bytes.size() - 8] ^= 0xFF;  // the CRC-32's first byte
    write_plain(gzip_path, bytes);
    CHECK(contains(file_error_message([&] { read_idx(gzip_path); }), "incorrect data check"));
  }
  SUBCASE("a header announcing more data than the file can hold is refused before reading on") {
    write_plain(path, make_idx({60000, 2000, 2000}, Bytes(10)));  // 240 GB announced, 10 bytes there
    CHECK(contains(file_error_message([&] { read_idx(path); }), "only 10 follow"));
    const std::string gzip_path = path + ".gz";
    write_gzip(gzip_path, make_idx({60000, 2000, 2000}, Bytes(10)));
    CHECK(contains(file_error_message([&] { read_idx(gzip_path); }), "gzip bytes cannot hold that many"));
  }
  SUBCASE("a folder where the file should be") {
    std::filesystem::create_directory(path);
    const std::string message = file_error_message([&] { read_idx(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "is a folder"));
    CHECK_FALSE(contains(message, "gzip"));
  }
  SUBCASE("bytes after the data") {
    write_plain(path, make_idx({2, 3, 3}, Bytes(20)));
    const std::string message = file_error_message([&] { read_idx(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "2 trailing bytes"));
  }
}

TEST_CASE("idx: load_idx pairs images with labels, plain or gzipped, and scales pixels") {
  TemporaryDirectory directory;
  write_mnist_like(directory, 6, 6, 4, 3, 2);

  const kiln::datasets::TrainTest data = load_idx(directory.path());
  CHECK(data.train.x.shape() == Shape{6, 3, 2});
  CHECK(data.train.y.shape() == Shape{6});
  CHECK(data.test.x.shape() == Shape{4, 3, 2});
  CHECK(data.test.y.shape() == Shape{4});
  CHECK(data.train.x[0] == 0.0f);
  CHECK(data.train.x[35] == doctest::Approx(35.0f / 255.0f));
  CHECK(data.test.x[23] == doctest::Approx(23.0f / 255.0f));
  CHECK(data.train.y[5] == 5.0f);
  CHECK(data.test.y[3] == 3.0f);

  const kiln::datasets::TrainTest unscaled = load_idx(directory.path(), {.scale = 1.0f});
  CHECK(unscaled.train.x[35] == 35.0f);
}

TEST_CASE("idx: ByteImages::gather converts the rows asked for, in their order, on one thread or a team") {
  TemporaryDirectory directory;
  write_mnist_like(directory, 100, 100, 4, 28, 28);
  const kiln::datasets::TrainTest floats = load_idx(directory.path());
  const kiln::datasets::ByteTrainTest bytes = kiln::datasets::load_idx_bytes(directory.path());
  // Any image equals load_idx's row for it, and any label its class.
  auto check_rows = [&](const kiln::LabeledData& batch, const std::vector<int64_t>& rows) {
    REQUIRE(batch.x.shape() == Shape{static_cast<int64_t>(rows.size()), 28, 28});
    REQUIRE(batch.y.shape() == Shape{static_cast<int64_t>(rows.size())});
    for (size_t i = 0; i < rows.size(); ++i) {
      for (int64_t p = 0; p < 784; ++p) {
        REQUIRE(batch.x.at(static_cast<int64_t>(i), p) == floats.train.x.at(rows[i], p));
      }
      CHECK(batch.y[static_cast<int64_t>(i)] == floats.train.y[rows[i]]);
    }
  };
  kiln::set_num_threads(2);
  const std::vector<int64_t> few = {7, 0, 99, 7};  // 4 x 784 pixels: one thread
  check_rows(bytes.train.gather(few), few);
  std::vector<int64_t> many;  // 64 x 784 pixels, past kParallelMinElements: split across the team
  for (int64_t i = 0; i < 64; ++i) many.push_back((i * 37 + 11) % 100);
  check_rows(bytes.train.gather(many), many);
  check_rows(bytes.train.gather({}), {});
  CHECK_THROWS_WITH_AS(bytes.train.gather(std::vector<int64_t>{3, 100}), doctest::Contains("row 100 is outside the 100 images"),
                       kiln::ShapeError);
}

TEST_CASE("idx: find_idx_file takes the plain file first, then the gzipped one, and names both when neither is there") {
  TemporaryDirectory directory;
  write_mnist_like(directory, 3, 3, 4, 2, 2);  // train files plain, test files gzipped
  CHECK(kiln::datasets::find_idx_file(directory.path(), "train-images-idx3-ubyte") == directory.file("train-images-idx3-ubyte"));
  CHECK(kiln::datasets::find_idx_file(directory.path(), "t10k-images-idx3-ubyte") == directory.file("t10k-images-idx3-ubyte.gz"));
  write_plain(directory.file("t10k-images-idx3-ubyte"), make_idx({1, 2, 2}, counting_bytes(4)));
  CHECK(kiln::datasets::find_idx_file(directory.path(), "t10k-images-idx3-ubyte") == directory.file("t10k-images-idx3-ubyte"));
  const std::string message = file_error_message([&] { kiln::datasets::find_idx_file(directory.path(), "other-idx1-ubyte"); });
  CHECK(contains(message, "no other-idx1-ubyte or other-idx1-ubyte.gz in " + directory.path()));
}

TEST_CASE("idx: load_idx explains missing files, wrong ranks and count mismatches") {
  TemporaryDirectory directory;

  SUBCASE("nothing there") {
    const std::string message = file_error_message([&] { load_idx(directory.path()); });
    CHECK(contains(message, "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz in " + directory.path()));
  }
  SUBCASE("fewer labels than images") {
    write_mnist_like(directory, 3, 2, 4, 2, 2);
    const std::string message = file_error_message([&] { load_idx(directory.path()); });
    CHECK(contains(message, directory.file("train-images-idx3-ubyte")));
    CHECK(contains(message, directory.file("train-labels-idx1-ubyte")));
    CHECK(contains(message, "3 images"));
    CHECK(contains(message, "2 labels"));
  }
  SUBCASE("flattened images where rank 3 is expected") {
    write_mnist_like(directory, 2, 2, 2, 2, 2);
    const std::string images_path = directory.file("train-images-idx3-ubyte");
    write_plain(images_path, make_idx({2, 4}, Bytes(8)));
    const std::string message = file_error_message([&] { load_idx(directory.path()); });
    CHECK(contains(message, images_path));
    CHECK(contains(message, "rank 3"));
  }
  SUBCASE("labels of rank 2") {
    write_mnist_like(directory, 2, 2, 2, 2, 2);
    const std::string labels_path = directory.file("t10k-labels-idx1-ubyte.gz");
    write_gzip(labels_path, make_idx({2, 1}, Bytes(2)));
    const std::string message = file_error_message([&] { load_idx(directory.path()); });
    CHECK(contains(message, labels_path));
    CHECK(contains(message, "rank 1"));
  }
}

TEST_CASE("idx: Debian's Fashion-MNIST loads as 60000 + 10000 images of 28x28") {
  if (!std::filesystem::exists(kiln::datasets::kFashionMnistDir)) {
    MESSAGE("skipped: " << kiln::datasets::kFashionMnistDir << " is absent (Debian package dataset-fashion-mnist)");
    return;
  }
  const kiln::datasets::TrainTest data = load_idx(kiln::datasets::kFashionMnistDir);
  CHECK(data.train.x.shape() == Shape{60000, 28, 28});
  CHECK(data.train.y.shape() == Shape{60000});
  CHECK(data.test.x.shape() == Shape{10000, 28, 28});
  CHECK(data.test.y.shape() == Shape{10000});
  for (const kiln::datasets::LabeledImages* split : {&data.train, &data.test}) {
    const auto pixels = split->x.values();
    const auto labels = split->y.values();
    CHECK(*std::min_element(pixels.begin(), pixels.end()) >= 0.0f);
    CHECK(*std::max_element(pixels.begin(), pixels.end()) <= 1.0f);
    CHECK(*std::min_element(labels.begin(), labels.end()) == 0.0f);
    CHECK(*std::max_element(labels.begin(), labels.end()) == 9.0f);
  }
}
