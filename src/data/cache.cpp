// File-cache records, the cache lock file, and the partial-pass warning.
//
// A record is a small header then raw little-endian data:
//   Tensor:      int64 rank, rank x int64 dims, element_count x float32
//   LabeledData: the x Tensor, then the y Tensor
//   int64:       8 bytes
#include "kiln/data/cache.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace kiln::data {
namespace {

void write_raw(std::ostream& out, const void* bytes, size_t size) { out.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size)); }

// False at a clean end of file before the first byte; FileError if a record is cut short.
bool read_raw(std::istream& in, void* bytes, size_t size, bool at_record_start) {
  in.read(static_cast<char*>(bytes), static_cast<std::streamsize>(size));
  const auto got = static_cast<size_t>(in.gcount());
  if (got == size) return true;
  if (got == 0 && at_record_start) return false;
  throw FileError("a record is cut short");
}

}  // namespace

void write_element(std::ostream& out, int64_t value) { write_raw(out, &value, sizeof value); }

bool read_element(std::istream& in, int64_t& value) { return read_raw(in, &value, sizeof value, true); }

void write_element(std::ostream& out, const Tensor& tensor) {
  write_element(out, static_cast<int64_t>(tensor.rank()));
  for (int64_t d : tensor.shape().dims()) write_element(out, d);
  write_raw(out, tensor.data(), sizeof(float) * static_cast<size_t>(tensor.size()));
}

bool read_element(std::istream& in, Tensor& tensor) {
  int64_t rank = 0;
  if (!read_raw(in, &rank, sizeof rank, true)) return false;
  if (rank < 0 || rank > Shape::kMaxRank) throw FileError("a record has rank " + std::to_string(rank));
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  if (rank > 0) read_raw(in, dims.data(), sizeof(int64_t) * dims.size(), false);
  tensor.resize(Shape(std::span<const int64_t>(dims)));
  if (tensor.size() > 0) read_raw(in, tensor.data(), sizeof(float) * static_cast<size_t>(tensor.size()), false);
  return true;
}

void write_element(std::ostream& out, const LabeledData& data) {
  write_element(out, data.x);
  write_element(out, data.y);
}

bool read_element(std::istream& in, LabeledData& data) {
  if (!read_element(in, data.x)) return false;
  if (!read_element(in, data.y)) throw FileError("a record is cut short");
  return true;
}

void warn_partial_cache(const std::string& where) {
  std::cerr << "Warning: the iterator stopped before reading the whole data set being cached (" << where
            << "), so the partial cache was discarded to avoid truncating the data set. This happens with a "
               "pipeline like dataset.cache().take(k).repeat(); write dataset.take(k).cache().repeat() instead.\n";
}

void acquire_cache_lock(const std::string& path) {
  const std::string lock_path = path + ".lockfile";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      throw FileError("cache: another iterator is already writing " + path + " (its lock file " + lock_path +
                      " exists). If nothing else is writing this cache, delete the lock file and try again.");
    }
    throw FileError("cache: cannot create the lock file " + lock_path);
  }
  ::close(fd);
}

void release_cache_lock(const std::string& path) { std::filesystem::remove(path + ".lockfile"); }

}  // namespace kiln::data
