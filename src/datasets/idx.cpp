// IDX reading through zlib's gz* functions, which read gzip and plain files alike, and the
// MNIST-layout loader that pairs image files with label files.
//
// Every check names the file and says what was expected next to what was found, because the
// usual culprits are a half-finished download or the images and labels of different sets.
#include "kiln/datasets/idx.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <sys/mman.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace kiln::datasets {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int kMaxIdxRank = 4;
constexpr size_t kMagicSize = 4;
constexpr size_t kDimensionSize = 4;
// Data is read in pieces of this size (gzread takes an unsigned int, so it must stay small).
constexpr size_t kReadPieceBytes = size_t{16} << 20;
constexpr uint64_t kReserveBytes = uint64_t{256} << 20;  // larger files grow past it
constexpr uint64_t kMaxGzipRatio = 1032;  // deflate cannot pack more bytes than this into one

std::string hex(uint32_t value, int digits) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%0*x", digits, value);
  return text;
}

// gzclose on scope exit, so an exception never leaks the file.
struct GzFileCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFilePtr = std::unique_ptr<gzFile_s, GzFileCloser>;

// Shuffled batches read images scattered over the whole of the training images (47 MB for
// Fashion-MNIST). With 4 KB pages nearly every image is also a TLB miss and a walk of the page
// tables; with 2 MB pages the whole set fits in the TLB. This asks Linux to back the whole 2 MB
// pages of a buffer not yet written with huge pages, as they are first touched. A hint: where
// transparent huge pages are off, nothing changes.
void advise_huge_pages(const void* buffer, size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{1} << 21;
  const auto start = reinterpret_cast<uintptr_t>(buffer);
  const uintptr_t first = (start + kHugePage - 1) & ~(kHugePage - 1), end = (start + size) & ~(kHugePage - 1);
  if (end > first) madvise(reinterpret_cast<void*>(first), end - first, MADV_HUGEPAGE);
#else
  (void)buffer;
  (void)size;
#endif
}

// Reads up to `size` bytes, fewer only where the data ends.
size_t read_up_to(gzFile file, uint8_t* buffer, size_t size, const std::string& path) {
  size_t total = 0;
  while (total < size) {
    const unsigned piece = static_cast<unsigned>(std::min(size - total, kReadPieceBytes));
    const int got = gzread(file, buffer + total, piece);
    if (got < 0) {
      int zlib_code = 0;
      throw FileError("cannot read IDX file '" + path + "': " + gzerror(file, &zlib_code) +
                      " (a damaged gzip file?)");
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  return total;
}

// zlib reports a gzip stream cut off mid-way not as an error but as a short read, leaving
// Z_BUF_ERROR behind; this turns that into a note for the error message.
std::string gzip_note(gzFile file) {
  int zlib_code = Z_OK;
  gzerror(file, &zlib_code);
  return zlib_code == Z_BUF_ERROR ? " (its gzip stream also ends early)" : "";
}


// Checks an image file and a label file against each other.
void check_images_and_labels(const IdxArray& images, const std::string& images_path, const IdxArray& labels,
                             const std::string& labels_path) {
  if (images.shape.rank() != 3) {
    throw FileError("'" + images_path + "' holds an array of shape " + images.shape.str() + " (rank " +
                    std::to_string(images.shape.rank()) + "), but images must have rank 3: [count, rows, cols]");
  }
  if (labels.shape.rank() != 1) {
    throw FileError("'" + labels_path + "' holds an array of shape " + labels.shape.str() + " (rank " +
                    std::to_string(labels.shape.rank()) + "), but labels must have rank 1: [count]");
  }
  if (images.shape[0] != labels.shape[0]) {
    throw FileError("'" + images_path + "' holds " + std::to_string(images.shape[0]) + " images but '" +
                    labels_path + "' holds " + std::to_string(labels.shape[0]) +
                    " labels; they must match one to one");
  }
}

// Turns a checked image and label array into tensors.
LabeledImages to_labeled_images(const IdxArray& images, const IdxArray& labels, float scale) {
  LabeledImages result{Tensor(images.shape), Tensor(labels.shape)};
  for (size_t i = 0; i < images.bytes.size(); ++i) {
    result.x[static_cast<int64_t>(i)] = static_cast<float>(images.bytes[i]) * scale;
  }
  for (size_t i = 0; i < labels.bytes.size(); ++i) {
    result.y[static_cast<int64_t>(i)] = static_cast<float>(labels.bytes[i]);
  }
  return result;
}

LabeledImages load_split(const std::string& dir, const std::string& images_name, const std::string& labels_name,
                         float scale) {
  const std::string images_path = find_idx_file(dir, images_name);
  const std::string labels_path = find_idx_file(dir, labels_name);
  IdxArray images = read_idx(images_path), labels = read_idx(labels_path);
  check_images_and_labels(images, images_path, labels, labels_path);
  return to_labeled_images(images, labels, scale);
}

ByteImages load_byte_split(const std::string& dir, const std::string& images_name, const std::string& labels_name,
                           float scale) {
  const std::string images_path = find_idx_file(dir, images_name);
  const std::string labels_path = find_idx_file(dir, labels_name);
  ByteImages split{read_idx(images_path), read_idx(labels_path), scale};
  check_images_and_labels(split.images, images_path, split.labels, labels_path);
  return split;
}

}  // namespace

std::string find_idx_file(const std::string& dir, const std::string& name) {
  const std::string plain_path = (std::filesystem::path(dir) / name).string();
  const std::string gzip_path = plain_path + ".gz";
  if (std::filesystem::exists(plain_path)) return plain_path;
  if (std::filesystem::exists(gzip_path)) return gzip_path;
  std::string message = "no " + name + " or " + name + ".gz in " + dir;
  if (!std::filesystem::is_directory(dir)) {
    message += " (the directory does not exist";
    if (dir == kFashionMnistDir) message += "; Debian's dataset-fashion-mnist package installs it";
    message += ")";
  }
  throw FileError(message);
}

IdxArray read_idx(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw FileError("cannot read IDX file '" + path + "': it is a folder, not a file");
  }
  // gzopen reads plain files too: it looks for the gzip magic and passes other bytes through.
  errno = 0;
  GzFilePtr file(gzopen(path.c_str(), "rb"));
  if (!file) {
    throw FileError("cannot open IDX file '" + path + "': " + (errno ? std::strerror(errno) : "zlib failed"));
  }

  // Magic number: 0, 0, the element type, the rank.
  uint8_t magic[kMagicSize];
  const size_t magic_bytes = read_up_to(file.get(), magic, kMagicSize, path);
  if (magic_bytes < kMagicSize) {
    throw FileError("IDX file '" + path + "' is truncated: it holds " + std::to_string(magic_bytes) +
                    " bytes, too few for the 4-byte magic number" + gzip_note(file.get()));
  }
  const uint32_t magic_value = uint32_t{magic[0]} << 24 | uint32_t{magic[1]} << 16 | uint32_t{magic[2]} << 8 | magic[3];
  const int rank = magic[3];
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != kUnsignedByteType || rank < 1 || rank > kMaxIdxRank) {
    std::string reason;
    if (magic[0] != 0 || magic[1] != 0) {
      reason = "its first two bytes are not 0";
    } else if (magic[2] != kUnsignedByteType) {
      reason = "its type byte is " + hex(magic[2], 2) + ", and kiln reads only 0x08 (unsigned byte)";
    } else {
      reason = "its rank byte is " + std::to_string(rank) + ", not 1 to 4";
    }
    throw FileError("'" + path + "' is not an IDX file of unsigned bytes: its magic number is " +
                    hex(magic_value, 8) + ", expected 0x000008NN (first two bytes 0, type byte 0x08 for " +
                    "unsigned byte, then the rank NN from 1 to 4); " + reason);
  }

  // Dimensions: one big-endian uint32 per axis.
  uint8_t dimension_bytes[kMaxIdxRank * kDimensionSize];
  const size_t header_size = kMagicSize + kDimensionSize * static_cast<size_t>(rank);
  const size_t got_dimension_bytes = read_up_to(file.get(), dimension_bytes, kDimensionSize * rank, path);
  if (kMagicSize + got_dimension_bytes < header_size) {
    throw FileError("IDX file '" + path + "' is truncated: its header needs " + std::to_string(header_size) +
                    " bytes for rank " + std::to_string(rank) + ", but the file holds only " +
                    std::to_string(kMagicSize + got_dimension_bytes) + gzip_note(file.get()));
  }
  int64_t dims[kMaxIdxRank];
  uint64_t expected_bytes = 1;  // at most (2^32)^4 would overflow; real files are far smaller
  bool size_overflows = false;
  for (int axis = 0; axis < rank; ++axis) {
    const uint8_t* bytes = dimension_bytes + kDimensionSize * axis;
    const uint32_t dim = uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | bytes[3];
    dims[axis] = dim;
    if (dim != 0 && expected_bytes > (uint64_t{1} << 62) / dim) size_overflows = true;
    expected_bytes *= dim;
  }
  IdxArray array{Shape(std::span<const int64_t>(dims, static_cast<size_t>(rank))), {}};
  if (size_overflows) {
    throw FileError("IDX file '" + path + "' has a damaged header: its shape " + array.shape.str() +
                    " is impossibly large");
  }

  // Data. The buffer grows as bytes arrive rather than trusting the header up front, so a
  // damaged header claiming terabytes gives the "truncated" error below, not a failed allocation.
  // Up to kReserveBytes, though, the announced size is reserved at once, which takes address
  // space only. That saves the copies of growing, and lets the pages be huge ones from the start.
  // Peak memory is then the data's size, not the doubling vector's.
  // The announced size is first checked against what the file can hold: its own bytes if it is
  // plain, and at most 1032 times them if it is gzip (deflate's best ratio).
  std::error_code size_error;
  const uint64_t file_bytes = std::filesystem::file_size(path, size_error);
  if (!size_error) {
    const bool plain = gzdirect(file.get()) == 1;
    const uint64_t most_data = plain ? file_bytes - std::min<uint64_t>(file_bytes, header_size) : file_bytes * kMaxGzipRatio;
    if (expected_bytes > most_data) {
      throw FileError("IDX file '" + path + "' is truncated or damaged: its header announces shape " + array.shape.str() +
                      ", " + std::to_string(expected_bytes) + " bytes of data, but " +
                      (plain ? "only " + std::to_string(most_data) + " follow"
                             : "its " + std::to_string(file_bytes) + " gzip bytes cannot hold that many"));
    }
  }
  array.bytes.reserve(static_cast<size_t>(std::min<uint64_t>(expected_bytes, kReserveBytes)));
  advise_huge_pages(array.bytes.data(), array.bytes.capacity());
  while (array.bytes.size() < expected_bytes) {
    const size_t already_read = array.bytes.size();
    const size_t wanted = static_cast<size_t>(std::min<uint64_t>(expected_bytes - already_read, kReadPieceBytes));
    array.bytes.resize(already_read + wanted);
    const size_t got = read_up_to(file.get(), array.bytes.data() + already_read, wanted, path);
    if (got < wanted) {
      array.bytes.resize(already_read + got);
      break;
    }
  }
  if (array.bytes.size() < expected_bytes) {
    throw FileError("IDX file '" + path + "' is truncated: its header announces shape " + array.shape.str() + ", " +
                    std::to_string(expected_bytes) + " bytes of data, but only " +
                    std::to_string(array.bytes.size()) + " follow" + gzip_note(file.get()));
  }

  // Nothing may follow the data: extra bytes mean the header and the data disagree.
  size_t trailing_bytes = 0;
  uint8_t scratch[4096];
  while (size_t got = read_up_to(file.get(), scratch, sizeof scratch, path)) trailing_bytes += got;
  if (trailing_bytes > 0) {
    throw FileError("IDX file '" + path + "' has " + std::to_string(trailing_bytes) +
                    " trailing bytes after the " + std::to_string(expected_bytes) +
                    " bytes of data that its header (shape " + array.shape.str() + ") announces");
  }
  if (!gzip_note(file.get()).empty()) {
    throw FileError("IDX file '" + path + "' is truncated: its gzip stream ends before its checksum");
  }
  return array;
}

TrainTest load_idx(const std::string& dir, const LoadIdxOptions& options) {
  return {load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", options.scale),
          load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", options.scale)};
}

ByteTrainTest load_idx_bytes(const std::string& dir, const LoadIdxOptions& options) {
  return {load_byte_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", options.scale),
          load_byte_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", options.scale)};
}

LabeledData ByteImages::gather(std::span<const int64_t> rows) const {
  const auto count = static_cast<int64_t>(rows.size());
  for (const int64_t row : rows) {
    if (row < 0 || row >= size()) {
      throw ShapeError("gather: row " + std::to_string(row) + " is outside the " + std::to_string(size()) + " images");
    }
  }
  LabeledData batch{Tensor::uninitialized(image_shape().with_batch(count)), Tensor::uninitialized(Shape{count})};
  const int64_t pixels_per_image = image_shape().element_count();
  const uint8_t* const all_pixels = images.bytes.data();
  const uint8_t* const all_labels = labels.bytes.data();
  float* const x = batch.x.data();
  float* const y = batch.y.data();
  const float pixel_scale = scale;
  // Shuffled rows are scattered over the whole data set, so each image starts with a cache miss
  // the hardware prefetcher cannot foresee. Asking for the image kPrefetchAhead rows ahead while
  // converting this one overlaps those misses instead of paying them one after another.
  constexpr int64_t kPrefetchAhead = 4;
  constexpr int64_t kCacheLine = 64;
  // Each thread of the caller's team converts a contiguous share of the rows. Training's thread
  // gathers its own batches once prefetch(AUTOTUNE) has handed the pipeline over, and its team
  // would otherwise wait meanwhile; on a pipeline thread the team is that one thread.
  for_each_share(count, count * pixels_per_image >= kParallelMinElements, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) {
        const uint8_t* ahead = all_pixels + rows[static_cast<size_t>(i + kPrefetchAhead)] * pixels_per_image;
        for (int64_t offset = 0; offset < pixels_per_image; offset += kCacheLine) __builtin_prefetch(ahead + offset);
      }
      const int64_t row = rows[static_cast<size_t>(i)];
      const uint8_t* pixels = all_pixels + row * pixels_per_image;
      float* out = x + i * pixels_per_image;
      for (int64_t p = 0; p < pixels_per_image; ++p) out[p] = static_cast<float>(pixels[p]) * pixel_scale;
      y[i] = static_cast<float>(all_labels[static_cast<size_t>(row)]);
    }
  });
  return batch;
}

}  // namespace kiln::datasets
