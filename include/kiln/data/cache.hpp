// kiln/data/cache.hpp — cache(): the first complete pass over the input is kept (in memory, or in
// a file when a path is given) and every later pass reads it back instead of recomputing it.
//
// tf.data's rules: the cache is complete only after a full pass. An iteration that stops early
// discards what it held, with a warning, so a later pass never sees a truncated data set. Only one
// iteration may write a file cache at a time: a second concurrent writer is refused (a lock file
// marks the writer). Elements are copied in and out; runs on its consumer's thread. In memory, over
// rows of a source in memory (from_tensor_slices, shuffled or not), the cache keeps the rows'
// numbers in the order the pass delivered them, not copies of the rows: a later pass replays
// the same rows in the same order, and batch() still copies each batch straight from the source.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/io/atomic_file.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <type_traits>
#include <vector>


namespace kiln::data {

// ---- element (de)serialisation for file caches ------------------------------------------------

// A cache file being read: every size a record declares is checked against the bytes the file
// still holds before anything is allocated for it, so a damaged file is a FileError, never a
// huge allocation.
class CacheFileReader {
 public:
  explicit CacheFileReader(const std::string& path);
  // False at a clean end of file (nothing left) when `at_record_start`; FileError if cut short.
  bool read(void* bytes, size_t size, bool at_record_start);
  int64_t bytes_left() const { return bytes_left_; }

 private:
  std::ifstream in_;
  int64_t bytes_left_ = 0;
};

void write_element(io::AtomicFile& out, const Tensor& tensor);
void write_element(io::AtomicFile& out, const LabeledData& data);
void write_element(io::AtomicFile& out, int64_t value);
bool read_element(CacheFileReader& in, Tensor& tensor);  // false at a clean end of file
bool read_element(CacheFileReader& in, LabeledData& data);
bool read_element(CacheFileReader& in, int64_t& value);
template <class T>
void write_element(io::AtomicFile& out, const std::vector<T>& elements) {
  write_element(out, static_cast<int64_t>(elements.size()));
  for (const T& element : elements) write_element(out, element);
}
template <class T>
bool read_element(CacheFileReader& in, std::vector<T>& elements) {
  int64_t count = 0;
  if (!read_element(in, count)) return false;
  // Every element takes at least 8 bytes, so a count beyond that is damage, not data.
  if (count < 0 || count > in.bytes_left() / 8) throw FileError("a record declares " + std::to_string(count) + " elements");
  elements.resize(static_cast<size_t>(count));
  for (T& element : elements) {
    if (!read_element(in, element)) return false;
  }
  return true;
}

// The warning tf.data gives when a caching pass is abandoned, in kiln's words.
void warn_partial_cache(const std::string& where);

// Creates path + ".lockfile" exclusively; throws FileError if another writer holds it.
void acquire_cache_lock(const std::string& path);
void release_cache_lock(const std::string& path);

// ---- in memory ----------------------------------------------------------------------------------

template <class T>
class MemoryCacheNode : public Node<T> {
 public:
  explicit MemoryCacheNode(NodePtr<T> input) : input_(std::move(input)), store_(std::make_shared<Store>()) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("cache");
    {
      std::lock_guard lock(store_->mutex);
      if (store_->complete) return std::make_unique<ReadIterator>(store_, std::move(stats));
      // Another iteration is filling the cache right now: read the input directly.
      if (store_->writer_active) return input_->make_iterator(context);
      store_->writer_active = true;
    }
    try {
      return std::make_unique<WriteIterator>(input_->make_iterator(context), store_, std::move(stats));
    } catch (...) {  // the input failed to start: this iteration writes nothing, so a later one may
      std::lock_guard lock(store_->mutex);
      store_->writer_active = false;
      throw;
    }
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  // Tensors and (x, y) pairs may come as rows of a source (Iterator::row_source).
  static constexpr bool kMayBeRows = std::is_same_v<T, Tensor> || std::is_same_v<T, LabeledData>;

  struct Store {
    std::mutex mutex;
    bool complete = false;
    bool writer_active = false;
    std::vector<T> elements;
    const T* row_source = nullptr;  // set when the pass came as rows of this source ...
    std::vector<int64_t> rows;      // ... and these are its rows, in order
  };

  class ReadIterator : public Iterator<T> {
   public:
    ReadIterator(std::shared_ptr<Store> store, std::shared_ptr<StageStatistics> stats)
        : store_(std::move(store)), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      // Complete stores never change again, so reading needs no lock.
      if constexpr (kMayBeRows) {
        if (store_->row_source) {
          if (index_ >= store_->rows.size()) return std::nullopt;
          stats_->elements_produced++;
          return row_of(*store_->row_source, store_->rows[index_++]);
        }
      }
      if (index_ >= store_->elements.size()) return std::nullopt;
      stats_->elements_produced++;
      return store_->elements[index_++];
    }
    const T* row_source() const override { return store_->row_source; }
    int64_t next_rows(int64_t count, std::vector<int64_t>& rows) override {
      const auto taken = static_cast<size_t>(std::min<int64_t>(count, static_cast<int64_t>(store_->rows.size() - index_)));
      rows.insert(rows.end(), store_->rows.begin() + static_cast<std::ptrdiff_t>(index_),
                  store_->rows.begin() + static_cast<std::ptrdiff_t>(index_ + taken));
      index_ += taken;
      stats_->elements_produced += static_cast<int64_t>(taken);
      return static_cast<int64_t>(taken);
    }

   private:
    std::shared_ptr<Store> store_;
    std::shared_ptr<StageStatistics> stats_;
    size_t index_ = 0;
  };

  class WriteIterator : public Iterator<T> {
   public:
    WriteIterator(std::unique_ptr<Iterator<T>> input, std::shared_ptr<Store> store, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), store_(std::move(store)), stats_(std::move(stats)) {
      if constexpr (kMayBeRows) source_ = input_->row_source();
    }
    ~WriteIterator() override {
      std::lock_guard lock(store_->mutex);
      store_->writer_active = false;
      if (!finished_) warn_partial_cache("memory");
    }
    std::optional<T> next() override {
      BusyTimer timer(*stats_);
      if constexpr (kMayBeRows) {
        if (source_) {  // the input's next row, as its number (the same row next() would give)
          one_row_.clear();
          if (next_rows(1, one_row_) == 0) return std::nullopt;
          return row_of(*source_, one_row_.front());
        }
      }
      std::optional<T> element = input_->next();
      if (!element) {
        finish();
        return std::nullopt;
      }
      pending_.push_back(*element);
      stats_->elements_produced++;
      return element;
    }
    const T* row_source() const override { return source_; }
    int64_t next_rows(int64_t count, std::vector<int64_t>& rows) override {
      if (!source_) return 0;
      const size_t before = rows.size();
      const int64_t taken = input_->next_rows(count, rows);
      if (taken == 0) {
        finish();
        return 0;
      }
      pending_rows_.insert(pending_rows_.end(), rows.begin() + static_cast<std::ptrdiff_t>(before), rows.end());
      stats_->elements_produced += taken;
      return taken;
    }

   private:
    void finish() {
      std::lock_guard lock(store_->mutex);
      store_->elements = std::move(pending_);
      store_->rows = std::move(pending_rows_);
      store_->row_source = source_;
      store_->complete = true;
      finished_ = true;
    }

    std::unique_ptr<Iterator<T>> input_;
    std::shared_ptr<Store> store_;
    std::shared_ptr<StageStatistics> stats_;
    const T* source_ = nullptr;  // the input's row source, if it has one
    std::vector<T> pending_;
    std::vector<int64_t> pending_rows_;
    std::vector<int64_t> one_row_;  // next()'s row number, over a row source
    bool finished_ = false;
  };

  NodePtr<T> input_;
  std::shared_ptr<Store> store_;  // shared by every iteration of this node
};

// ---- in a file ----------------------------------------------------------------------------------

template <class T>
class FileCacheNode : public Node<T> {
 public:
  FileCacheNode(NodePtr<T> input, std::string path) : input_(std::move(input)), path_(std::move(path)) {}

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("cache");
    if (std::filesystem::exists(path_)) return std::make_unique<ReadIterator>(path_, std::move(stats));
    acquire_cache_lock(path_);  // throws if another iteration is writing this cache
    try {
      return std::make_unique<WriteIterator>(input_->make_iterator(context), path_, std::move(stats));
    } catch (...) {  // the input or the temporary file failed: no writer, so no lock
      release_cache_lock(path_);
      throw;
    }
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  class ReadIterator : public Iterator<T> {
   public:
    ReadIterator(std::string path, std::shared_ptr<StageStatistics> stats)
        : path_(std::move(path)), in_(path_), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      T element;
      try {
        if (!read_element(in_, element)) return std::nullopt;
      } catch (const FileError& error) {
        throw FileError("cache file " + path_ + " is damaged (" + error.what() + "); delete it to rebuild it");
      }
      stats_->elements_produced++;
      return element;
    }

   private:
    std::string path_;
    CacheFileReader in_;
    std::shared_ptr<StageStatistics> stats_;
  };

  class WriteIterator : public Iterator<T> {
   public:
    WriteIterator(std::unique_ptr<Iterator<T>> input, std::string path, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), path_(std::move(path)), out_(path_), stats_(std::move(stats)) {}
    ~WriteIterator() override {
      if (!finished_) warn_partial_cache(path_);  // out_ removes its temporary file
      release_cache_lock(path_);
    }
    std::optional<T> next() override {
      BusyTimer timer(*stats_);
      std::optional<T> element = input_->next();
      if (!element) {
        out_.commit();  // only a complete pass becomes the cache
        finished_ = true;
        return std::nullopt;
      }
      write_element(out_, *element);
      stats_->elements_produced++;
      return element;
    }

   private:
    std::unique_ptr<Iterator<T>> input_;
    std::string path_;
    io::AtomicFile out_;
    std::shared_ptr<StageStatistics> stats_;
    bool finished_ = false;
  };

  NodePtr<T> input_;
  std::string path_;
};

}  // namespace kiln::data
