// Faults injected into running pipelines: an exception at every stage, a consumer that stops at
// every point of an epoch, a cache file that changes size while it is read, and (in the soak run,
// `ctest -L soak`) hundreds of epochs cut short, checked for leaked threads, descriptors and memory.
#include <kiln/kiln.hpp>

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "stream_capture.hpp"
#include "temporary_directory.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace kiln;
using kiln::testing::contains;
using kiln::testing::TemporaryDirectory;

namespace {

constexpr int64_t kElements = 24;
constexpr int64_t kThrowAt = 7;

struct Injected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A pipeline of every kind of stage, with `fault` (which may throw) inside stage `where`:
//   0 generator, 1 serial map, 2 filter, 3 parallel map, 4 the function of a map after shuffle,
//   5 a map after batch (on whole batches), 6 a map after a file cache, 7 a map after prefetch.
// Without a fault it yields kElements / 4 batches of the numbers 0..kElements-1, shuffled.
constexpr int kStages = 8;
data::Dataset<std::vector<int64_t>> pipeline_with_fault_at(int where, const std::function<void(int64_t)>& fault,
                                                           const std::string& cache_path) {
  const auto at = [&](int stage) { return stage == where ? fault : [](int64_t) {}; };
  const auto g = at(0), m = at(1), f = at(2), p = at(3), s = at(4), b = at(5), c = at(6), q = at(7);
  auto numbers = data::from_generator<int64_t>([g] {
    return data::Generator<int64_t>([g, next = int64_t{0}]() mutable -> std::optional<int64_t> {
      if (next == kElements) return std::nullopt;
      g(next);
      return next++;
    });
  });
  return numbers.map([m](int64_t v) { m(v); return v; })
      .filter([f](const int64_t& v) { f(v); return true; })
      .map([p](int64_t v) { p(v); return v; }, 3)
      .shuffle(8, /*seed=*/1)
      .map([s](int64_t v) { s(v); return v; })
      .batch(4)
      .map([b](std::vector<int64_t> batch) { b(batch.front()); return batch; })
      .cache(cache_path)
      .map([c](std::vector<int64_t> batch) { c(batch.front()); return batch; })
      .prefetch(2)
      .map([q](std::vector<int64_t> batch) { q(batch.front()); return batch; });
}

int count_entries(const std::string& folder) {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder)) ++count;
  return count;
}

int thread_count() { return count_entries("/proc/self/task"); }
int descriptor_count() { return count_entries("/proc/self/fd"); }

long resident_kilobytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace

TEST_CASE("an exception at any stage reaches the consumer as a kiln::Error, ends the epoch and leaves no cache") {
  for (int where = 0; where < kStages; ++where) {
    CAPTURE(where);
    TemporaryDirectory directory;
    const std::string cache = directory.file("batches.cache");
    // Before the batch, the fault fires on element kThrowAt; after it, on the first batch.
    auto fired = std::make_shared<std::atomic<bool>>(false);
    const auto fault = [where, fired](int64_t v) {
      if ((where >= 5 || v == kThrowAt) && !fired->exchange(true)) throw Injected("injected at stage " + std::to_string(where));
    };
    const auto dataset = pipeline_with_fault_at(where, fault, cache);
    kiln::testing::StreamCapture quiet(std::cerr);  // the partial-cache warning
    data::Iteration<std::vector<int64_t>> iteration = dataset.iterate();
    const std::string message = kiln::testing::error_message<kiln::Error>([&] {
      while (iteration.next()) {
      }
    });
    CHECK(contains(message, "injected at stage " + std::to_string(where)));
    // Whatever the stage, what is left of the epoch ends: threaded stages end it at the error, a
    // serial stage after them goes on with the next element, as tf.data's iterators do.
    int64_t calls_after = 0;
    while (calls_after < 100 && iteration.next()) ++calls_after;
    CHECK(calls_after < 100);
    if (where < 6) CHECK_FALSE(std::filesystem::exists(cache));  // a failed pass never becomes the cache
    // The same pipeline without the fault still gives every element.
    const auto healthy = pipeline_with_fault_at(where, [](int64_t) {}, directory.file("healthy.cache"));
    std::vector<int64_t> all;
    for (const std::vector<int64_t>& batch : healthy) all.insert(all.end(), batch.begin(), batch.end());
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() == static_cast<size_t>(kElements));
    for (int64_t i = 0; i < kElements; ++i) CHECK(all[static_cast<size_t>(i)] == i);
  }
}

TEST_CASE("a consumer may stop at any point of an epoch: the next epoch is whole and the cache only ever complete") {
  const int threads_before = thread_count(), descriptors_before = descriptor_count();
  for (int64_t taken = 0; taken <= kElements / 4; ++taken) {
    CAPTURE(taken);
    TemporaryDirectory directory;
    const std::string cache = directory.file("batches.cache");
    const auto dataset = pipeline_with_fault_at(-1, [](int64_t) {}, cache);
    {
      kiln::testing::StreamCapture quiet(std::cerr);  // the partial-cache warning
      data::Iteration<std::vector<int64_t>> iteration = dataset.iterate();
      for (int64_t i = 0; i < taken; ++i) REQUIRE(iteration.next().has_value());
    }
    // The prefetch thread may have read the cache's input to its end before the consumer stopped;
    // then the cache is complete. Either way no temporary or lock file is left behind.
    const std::vector<std::string> left = directory.listing();
    CHECK((left.empty() || left == std::vector<std::string>{"batches.cache"}));
    int64_t batches = 0;
    for (const std::vector<int64_t>& batch : dataset) batches += batch.size() == 4 ? 1 : 0;
    CHECK(batches == kElements / 4);
    CHECK(std::filesystem::exists(cache));  // the whole pass became the cache
  }
  // Every pipeline thread was joined, every file closed.
  CHECK(thread_count() <= threads_before);
  CHECK(descriptor_count() == descriptors_before);
}

TEST_CASE("a cache file that shrinks while it is read is a FileError; one that grows is read as it was") {
  TemporaryDirectory directory;
  const std::string path = directory.file("numbers.cache");
  constexpr int64_t kCount = 100'000;  // 800 KB: far more than a read buffer holds
  const auto cached = data::range(kCount).cache(path);
  for ([[maybe_unused]] int64_t v : cached) {
  }  // the first pass writes the cache
  const auto original_size = std::filesystem::file_size(path);
  {
    data::Iteration<int64_t> iteration = cached.iterate();
    CHECK(*iteration.next() == 0);
    std::filesystem::resize_file(path, original_size / 2);
    const std::string message = kiln::testing::error_message<FileError>([&] {
      while (iteration.next()) {
      }
    });
    CHECK(contains(message, path + " is damaged"));
  }
  std::filesystem::remove(path);
  for ([[maybe_unused]] int64_t v : cached) {
  }  // written again, whole
  {
    data::Iteration<int64_t> iteration = cached.iterate();
    CHECK(*iteration.next() == 0);
    std::ofstream(path, std::ios::binary | std::ios::app) << std::string(64, '\x7f');
    int64_t count = 1;
    while (std::optional<int64_t> v = iteration.next()) CHECK(*v == count++);
    CHECK(count == kCount);  // the elements there when the pass began, no more
  }
}

// The soak run: skipped by the default suite; `ctest -L soak` runs it (kiln_tests --no-skip), in seconds.
TEST_CASE("soak: 200 epochs cut short at every point leak no threads, descriptors or memory" * doctest::skip()) {
  const auto dataset = data::range(4000)
                           .map([](int64_t v) { return Tensor(Shape{64}, static_cast<float>(v)); }, 2)
                           .prefetch(data::AUTOTUNE)
                           .batch(16)
                           .prefetch(2);
  const int threads_before = thread_count(), descriptors_before = descriptor_count();
  long resident_after_warm_up = 0;
  for (int epoch = 0; epoch < 200; ++epoch) {
    data::Iteration<Tensor> iteration = dataset.iterate();
    const int64_t stop_after = epoch % 5 == 4 ? 250 : 1 + epoch % 37;  // every fifth epoch runs whole
    for (int64_t b = 0; b < stop_after && iteration.next(); ++b) {
    }
    if (epoch == 20) resident_after_warm_up = resident_kilobytes();
  }
  CHECK(thread_count() <= threads_before);
  CHECK(descriptor_count() == descriptors_before);
  MESSAGE("resident memory: " << resident_after_warm_up / 1024 << " MB after 20 epochs, " << resident_kilobytes() / 1024
                              << " MB after 200");
  CHECK(resident_kilobytes() < resident_after_warm_up + 16 * 1024);
}
