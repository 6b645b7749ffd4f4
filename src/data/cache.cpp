// File-cache records, the cache lock file, and the partial-pass warning.
//
// A record is a small header then raw little-endian data:
//   Tensor:      int64 rank, rank x int64 dims, element_count x float32
//   LabeledData: the x Tensor, the y Tensor, then the sample weights as a Tensor (of shape [0]
//                when the data carries none)
//   int64:       8 bytes
#include "kiln/data/cache.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace kiln::data {

CacheFileReader::CacheFileReader(const std::string& path) : in_(path, std::ios::binary) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (!in_ || error) throw FileError("cache: cannot read " + path);
  bytes_left_ = static_cast<int64_t>(size);
}

bool CacheFileReader::read(void* bytes, size_t size, bool at_record_start) {
  if (bytes_left_ == 0 && at_record_start) return false;
  if (static_cast<uint64_t>(bytes_left_) < size) throw FileError("a record is cut short");
  in_.read(static_cast<char*>(bytes), static_cast<std::streamsize>(size));
  // The file may have shrunk since it was opened: what was read is what counts.
  if (static_cast<size_t>(in_.gcount()) != size) throw FileError("a record is cut short");
  bytes_left_ -= static_cast<int64_t>(size);
  return true;
}

void write_element(io::AtomicFile& out, int64_t value) { out.write(&value, sizeof value); }

bool read_element(CacheFileReader& in, int64_t& value) { return in.read(&value, sizeof value, true); }

void write_element(io::AtomicFile& out, const Tensor& tensor) {
  write_element(out, static_cast<int64_t>(tensor.rank()));
  for (int64_t d : tensor.shape().dims()) write_element(out, d);
  out.write(tensor.data(), sizeof(float) * static_cast<size_t>(tensor.size()));
}

bool read_element(CacheFileReader& in, Tensor& tensor) {
  int64_t rank = 0;
  if (!in.read(&rank, sizeof rank, true)) return false;
  if (rank < 0 || rank > Shape::kMaxRank) throw FileError("a record has rank " + std::to_string(rank));
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  if (rank > 0) in.read(dims.data(), sizeof(int64_t) * dims.size(), false);
  // The shape's floats must be in the file: checked before the tensor is sized, and without
  // overflow, since the dims are whatever the file says.
  const int64_t max_elements = in.bytes_left() / static_cast<int64_t>(sizeof(float));
  int64_t elements = 1;
  for (const int64_t d : dims) {
    if (d < 0 || (d > 0 && elements > max_elements / d)) {
      throw FileError("a record's shape needs more bytes than the file holds");
    }
    elements *= d;
  }
  tensor.resize(Shape(std::span<const int64_t>(dims)));
  if (tensor.size() > 0) in.read(tensor.data(), sizeof(float) * static_cast<size_t>(tensor.size()), false);
  return true;
}

void write_element(io::AtomicFile& out, const LabeledData& data) {
  write_element(out, data.x);
  write_element(out, data.y);
  write_element(out, data.sample_weight.empty() ? Tensor(Shape{0}) : data.sample_weight);
}

bool read_element(CacheFileReader& in, LabeledData& data) {
  if (!read_element(in, data.x)) return false;
  if (!read_element(in, data.y) || !read_element(in, data.sample_weight)) throw FileError("a record is cut short");
  if (data.sample_weight.empty()) data.sample_weight = Tensor();
  if (!sample_weight_fits(data.sample_weight, data.x.rows())) {
    throw FileError("a record's sample weights have shape " + data.sample_weight.shape().str() + " for " + std::to_string(data.x.rows()) +
                    " rows");
  }
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
