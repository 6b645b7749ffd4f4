// kiln/datasets/idx.hpp — MNIST-style IDX files, and the train/test image sets built from them.
//
// IDX is MNIST's format: a 4-byte magic (0, 0, type, rank), big-endian uint32 dimensions, then
// the raw data. kiln reads only the unsigned-byte type (0x08) at ranks 1 to 4, plain or gzipped.
// Every malformed file is a FileError naming it. No global state: any thread may call these.
//
// Intended usage:
//   1. auto data = kiln::datasets::load_idx(kiln::datasets::kFashionMnistDir);
//   2. data.train.x is [60000, 28, 28] with pixels in [0, 1]; data.train.y is [60000] class indices.
#pragma once

#include "kiln/tensor.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::datasets {

// One IDX file (MNIST's format): the unsigned-byte type only (0x08), any rank 1..4.
// `bytes` holds shape.element_count() values, row-major.
struct IdxArray {
  Shape shape;
  std::vector<uint8_t> bytes;
};

// Reads one IDX file, plain or gzip-compressed (told apart by its content, not its name).
IdxArray read_idx(const std::string& path);

// "dir/name" if it exists, else "dir/name.gz"; otherwise throws FileError naming both (and, for a
// missing kFashionMnistDir, the Debian package that installs it).
std::string find_idx_file(const std::string& dir, const std::string& name);

// x: [n, rows, cols] float32 pixels; y: [n] float32, each the class index (0..9 for MNIST).
using LabeledImages = LabeledData;

struct TrainTest {
  LabeledImages train;
  LabeledImages test;
};

struct LoadIdxOptions {
  float scale = 1.0f / 255.0f;  // pixels are multiplied by scale (1/255 gives [0, 1])
};

// Loads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from `dir`, each either plain or with ".gz" (the plain one when both
// exist). Works for MNIST and for Fashion-MNIST, which share these names.
TrainTest load_idx(const std::string& dir, const LoadIdxOptions& options = {});

// The same data kept as the bytes the files hold: a quarter of float32's memory (47 MB instead of
// 188 MB for Fashion-MNIST's training images). A batch becomes float32 (pixel * scale) only when
// gathered, which a pipeline's map does on its own thread:
//   range(n).shuffle(n).batch(64).map([&](auto& rows) { return bytes.gather(rows); })
struct ByteImages {
  IdxArray images;  // [n, rows, cols]
  IdxArray labels;  // [n]
  float scale = 1.0f / 255.0f;

  int64_t size() const { return images.shape[0]; }
  Shape image_shape() const { return images.shape.without_first_axis(); }
  // x: [rows.size(), image...] float32 pixels times scale; y: [rows.size()] class indices.
  LabeledData gather(std::span<const int64_t> rows) const;
};

struct ByteTrainTest {
  ByteImages train;
  ByteImages test;
};

// load_idx's files, checks and errors, keeping the pixels as bytes.
ByteTrainTest load_idx_bytes(const std::string& dir, const LoadIdxOptions& options = {});

// Where Debian's dataset-fashion-mnist package puts its gzipped IDX files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace kiln::datasets
