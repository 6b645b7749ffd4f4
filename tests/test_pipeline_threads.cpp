// The pipeline's threads (kiln/data/map.hpp, prefetch.hpp, autotune.hpp, sequence.hpp): a
// parallel map gives the serial order when asked to; exceptions cross threads with the element's
// position; destroying a running pipeline never hangs; AUTOTUNE's controllers move in the right
// direction; a Sequence source delivers its batches in order, shuffled when asked, and calls
// on_epoch_end once per complete epoch. Timing bounds here are generous: they catch hangs and
// controllers going the wrong way, not slowness.
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include "stream_capture.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>

using namespace kiln;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using kiln::testing::StreamCapture;

namespace {

template <class T>
std::vector<T> collect(const data::Dataset<T>& dataset) {
  std::vector<T> elements;
  for (T& element : dataset) elements.push_back(std::move(element));
  return elements;
}

std::vector<int64_t> sorted(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  return values;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Computes (spins) for `microseconds`, then returns v.
int64_t spin_then_return(int64_t v, int64_t microseconds) {
  const auto until = Clock::now() + std::chrono::microseconds(microseconds);
  while (Clock::now() < until) {
  }
  return v;
}

// A per-run salt, so each run jitters differently; CAPTURE it to replay a failure.
const uint64_t kJitterSalt = std::random_device{}();

// Sleeps 0-200 µs, a different time for each element, so parallel workers finish out of order.
void jitter(int64_t element) {
  std::this_thread::sleep_for(std::chrono::microseconds(mix64(static_cast<uint64_t>(element) ^ kJitterSalt) % 201));
}

int64_t jittered_square(int64_t v) {
  jitter(v);
  return v * v + 1;
}

// The user's exception: PipelineError wraps it, std::rethrow_if_nested gives it back.
class Boom : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string boom_message(int64_t k) { return "boom at " + std::to_string(k); }

// Iterates `dataset` until it throws; checks the error names `stage` and element k, carries the
// original message and type, and that the elements before k were all delivered first, in order.
void check_error_at(const data::Dataset<int64_t>& dataset, int64_t k, const std::string& stage) {
  CAPTURE(stage);
  CAPTURE(k);
  std::vector<int64_t> delivered;
  bool threw = false;
  try {
    data::Iteration<int64_t> iteration = dataset.iterate();
    while (std::optional<int64_t> element = iteration.next()) delivered.push_back(*element);
  } catch (const data::PipelineError& error) {
    threw = true;
    const std::string message = error.what();
    CHECK(message.find(stage + ": element " + std::to_string(k) + ": ") != std::string::npos);
    CHECK(message.find(boom_message(k)) != std::string::npos);
    bool original_recovered = false;
    try {
      std::rethrow_if_nested(error);
    } catch (const Boom& original) {
      original_recovered = true;
      CHECK(std::string(original.what()) == boom_message(k));
    }
    CHECK(original_recovered);
  }
  CHECK(threw);
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < k; ++i) expected.push_back(i * 10);
  CHECK(delivered == expected);
}

}  // namespace

// ---- parallel map: order ----------------------------------------------------------------------

TEST_CASE("a deterministic parallel map gives exactly the serial map's sequence") {
  CAPTURE(kJitterSalt);
  const std::vector<int64_t> serial = collect(data::range(300).map(jittered_square));
  REQUIRE(serial.size() == 300);
  for (const int64_t calls : {int64_t{2}, int64_t{4}, data::AUTOTUNE}) {
    CAPTURE(calls);
    CHECK(collect(data::range(300).map(jittered_square, calls, /*deterministic=*/true)) == serial);
    // ... also behind a prefetch, and with a batch after it.
    CHECK(collect(data::range(300).map(jittered_square, calls).prefetch(3)) == serial);
  }
  const auto batches = collect(data::range(300).map(jittered_square, 4).batch(7).prefetch(data::AUTOTUNE).unbatch());
  CHECK(batches == serial);
}

TEST_CASE("a non-deterministic parallel map gives the same elements, in any order") {
  CAPTURE(kJitterSalt);
  const std::vector<int64_t> serial = collect(data::range(300).map(jittered_square));
  for (const int64_t calls : {int64_t{2}, int64_t{4}, data::AUTOTUNE}) {
    CAPTURE(calls);
    const std::vector<int64_t> unordered = collect(data::range(300).map(jittered_square, calls, /*deterministic=*/false));
    CHECK(sorted(unordered) == sorted(serial));
  }
}

TEST_CASE("a parallel map calls its function once per element, on several threads") {
  std::mutex mutex;
  std::vector<int64_t> seen;
  std::vector<std::thread::id> threads;
  const auto dataset = data::range(100).map([&](int64_t v) {
    jitter(v);
    std::lock_guard lock(mutex);
    seen.push_back(v);
    if (std::find(threads.begin(), threads.end(), std::this_thread::get_id()) == threads.end()) {
      threads.push_back(std::this_thread::get_id());
    }
    return v;
  }, 4);
  CHECK(collect(dataset).size() == 100);
  CHECK(sorted(seen) == collect(data::range(100)));
  CHECK(threads.size() >= 2);
  CHECK(std::find(threads.begin(), threads.end(), std::this_thread::get_id()) == threads.end());
}

// ---- exceptions -------------------------------------------------------------------------------

TEST_CASE("an exception in a map function reaches the consumer as a PipelineError naming the element") {
  CAPTURE(kJitterSalt);
  constexpr int64_t kCount = 20;
  for (const int64_t k : {int64_t{0}, int64_t{5}, kCount - 1}) {
    const auto throw_at_k = [k](int64_t v) {
      jitter(v);
      if (v == k) throw Boom(boom_message(k));
      return v * 10;
    };
    const auto source = data::range(kCount);
    check_error_at(source.map(throw_at_k), k, "map");
    check_error_at(source.map(throw_at_k, 2), k, "map");
    check_error_at(source.map(throw_at_k, 4), k, "map");
    check_error_at(source.map(throw_at_k, data::AUTOTUNE), k, "map");
    check_error_at(source.map(throw_at_k).prefetch(2), k, "map");
    check_error_at(source.map(throw_at_k, 3).prefetch(2), k, "map");
    check_error_at(source.map(throw_at_k, 3).prefetch(data::AUTOTUNE), k, "map");
  }
}

TEST_CASE("an exception in a generator reaches the consumer as a PipelineError naming the element") {
  constexpr int64_t kCount = 20;
  for (const int64_t k : {int64_t{0}, int64_t{5}, kCount - 1}) {
    const auto generator = data::from_generator<int64_t>([k]() -> data::Generator<int64_t> {
      return [k, next = int64_t{0}]() mutable -> std::optional<int64_t> {
        if (next == kCount) return std::nullopt;
        if (next == k) throw Boom(boom_message(k));
        return 10 * next++;
      };
    });
    check_error_at(generator, k, "from_generator");
    check_error_at(generator.prefetch(2), k, "from_generator");
    // The stage nearest the origin names it: a map downstream does not rename the error.
    check_error_at(generator.map([](int64_t v) { return v; }), k, "from_generator");
    check_error_at(generator.map([](int64_t v) { return v; }, 3).prefetch(2), k, "from_generator");
  }
}

TEST_CASE("an exception that is not a std::exception still arrives, named") {
  const auto dataset = data::range(5).map([](int64_t v) -> int64_t {
    if (v == 2) throw 42;
    return v;
  }, 2);
  bool threw = false;
  try {
    collect(dataset);
  } catch (const data::PipelineError& error) {
    threw = true;
    CHECK(std::string(error.what()).find("map: element 2: an exception that is not a std::exception") != std::string::npos);
    CHECK_THROWS_AS(std::rethrow_if_nested(error), int);
  }
  CHECK(threw);
}

TEST_CASE("after an error, a parallel or prefetching pipeline ends instead of hanging") {
  const auto fail_at_3 = [](int64_t v) {
    if (v == 3) throw Boom("three");
    return v;
  };
  for (const auto& dataset : {data::range(10).map(fail_at_3, 2), data::range(10).map(fail_at_3).prefetch(2)}) {
    data::Iteration<int64_t> iteration = dataset.iterate();
    int64_t delivered = 0;
    while (true) {
      try {
        if (!iteration.next()) break;
        ++delivered;
      } catch (const data::PipelineError&) {
        break;
      }
    }
    CHECK(delivered == 3);
    CHECK_FALSE(iteration.next().has_value());  // nothing after the error
    CHECK_FALSE(iteration.next().has_value());
  }
}

// ---- stopping early ---------------------------------------------------------------------------

TEST_CASE("destroying a running pipeline mid-epoch, with full queues, returns promptly") {
  double slowest = 0.0;
  for (int round = 0; round < 50; ++round) {
    const int64_t calls = round % 3 == 0 ? data::AUTOTUNE : 2 + round % 3;
    const auto dataset = data::range(1'000'000).map([](int64_t v) { return v * 2; }, calls).prefetch(2);
    const Clock::time_point start = Clock::now();
    {
      data::Iteration<int64_t> iteration = dataset.iterate();
      for (int64_t i = 0; i < 3; ++i) REQUIRE(*iteration.next() == 2 * i);
      if (round % 5 == 0) std::this_thread::sleep_for(1ms);  // let every queue fill up
    }
    slowest = std::max(slowest, seconds_since(start));
  }
  CHECK(slowest < 5.0);
}

TEST_CASE("breaking out of a range-for over a running pipeline returns promptly") {
  double slowest = 0.0;
  for (int round = 0; round < 50; ++round) {
    const auto dataset = data::range(1'000'000).map([](int64_t v) { return v + 1; }, data::AUTOTUNE).prefetch(2).batch(4).prefetch(2);
    const Clock::time_point start = Clock::now();
    int64_t batches = 0;
    for (const std::vector<int64_t>& batch : dataset) {
      CHECK(batch.size() == 4);
      if (++batches == 3) break;
    }
    slowest = std::max(slowest, seconds_since(start));
    CHECK(batches == 3);
  }
  CHECK(slowest < 5.0);
}

TEST_CASE("destroying a pipeline whose workers are busy in the user's function waits for them, then stops") {
  std::atomic<int64_t> running{0};
  const Clock::time_point start = Clock::now();
  {
    const auto dataset = data::range(1'000'000).map([&](int64_t v) {
      ++running;
      std::this_thread::sleep_for(2ms);
      --running;
      return v;
    }, 4).prefetch(4);
    data::Iteration<int64_t> iteration = dataset.iterate();
    CHECK(*iteration.next() == 0);
  }
  CHECK(running == 0);  // every call had finished: nothing was detached
  CHECK(seconds_since(start) < 5.0);
}

TEST_CASE("a slow consumer keeps the prefetch queue full and still gets every element in order") {
  const auto dataset = data::range(20).prefetch(2);
  data::Iteration<int64_t> iteration = dataset.iterate();
  std::vector<int64_t> received;
  while (std::optional<int64_t> element = iteration.next()) {
    received.push_back(*element);
    std::this_thread::sleep_for(2ms);  // the producer fills the queue meanwhile, then waits for room
  }
  CHECK(received == collect(data::range(20)));
  const auto report = iteration.statistics();
  REQUIRE(report.front().name == "prefetch");
  CHECK(report.front().buffer_capacity == 2);
  CHECK(report.front().mean_buffer_occupancy > 1.0);  // mostly full when the consumer came back
  CHECK(report.front().mean_buffer_occupancy <= 2.0);
}

TEST_CASE("prefetch(n) makes the next element while n finished ones wait, as tf.data's does") {
  std::atomic<int> made{0};
  const auto dataset = data::range(10).map([&made](int64_t v) {
    ++made;
    return v;
  }).prefetch(1);
  data::Iteration<int64_t> iteration = dataset.iterate();
  CHECK(*iteration.next() == 0);
  // Element 0 taken, element 1 waiting in the queue, element 2 made and waiting for room.
  const auto give_up = Clock::now() + 5s;
  while (made.load() < 3 && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // time to make a fourth, if it wrongly would
  CHECK(made.load() == 3);
  for (int64_t expected = 1; expected < 10; ++expected) CHECK(*iteration.next() == expected);
  CHECK_FALSE(iteration.next().has_value());
}

TEST_CASE("prefetch(1) overlaps a source that waits with a consumer that works") {
  // 20 elements, each 20 ms of waiting in the source and 20 ms of work in the consumer: 800 ms one
  // after the other, about 420 ms overlapped. The bound is far from both, and sleeps that run late
  // on a loaded machine stretch both alike.
  constexpr int kElements = 20;
  const auto source = data::from_generator<int64_t>([] {
    return data::Generator<int64_t>([next = int64_t{0}]() mutable -> std::optional<int64_t> {
      if (next == kElements) return std::nullopt;
      std::this_thread::sleep_for(20ms);
      return next++;
    });
  });
  const auto start = Clock::now();
  int64_t taken = 0;
  for (int64_t element : source.prefetch(1)) {
    CHECK(element == taken++);
    std::this_thread::sleep_for(20ms);
  }
  CHECK(taken == kElements);
  CHECK(seconds_since(start) < 0.64);
}

TEST_CASE("a pipeline thread keeps making elements while the model's team computes") {
  // The consumer runs loops on the whole team, every core spinning, and takes an element after
  // each; the producer computes for 200 us an element. If the team kept every core while the
  // producer wanted one, the consumer would wait for most elements.
  const auto dataset = data::range(100).map([](int64_t v) { return spin_then_return(v, 200); }).prefetch(4);
  int64_t wait_ns = 0, taken = 0;
  const auto start = Clock::now();
  data::Iteration<int64_t> iteration = dataset.iterate();
  while (true) {
    parallel_tiles(4 * available_cores(), [](int64_t first, int64_t end) { spin_then_return(0, 500 * (end - first)); });
    const auto wait_start = Clock::now();
    std::optional<int64_t> element = iteration.next();
    wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - wait_start).count();
    if (!element) break;
    CHECK(*element == taken++);
  }
  CHECK(taken == 100);
  const double wait_share = static_cast<double>(wait_ns) * 1e-9 / seconds_since(start);
  MESSAGE("the consumer waited for " << wait_share * 100 << "% of the epoch");
  CHECK(wait_share < 0.25);
}

TEST_CASE("pipeline threads started by fit are normal threads, not batch threads like fit's own") {
  // fit's thread is a batch thread while it trains (BatchScheduling), and a new thread inherits its
  // creator's policy. A batch thread woken by a finished read does not preempt the team: it waits
  // for a team thread's time slice to run out, which starves a prefetch producer of its core.
  std::mutex mutex;
  std::vector<int> producer_policies, worker_policies;
  int fit_policy = -1;
  const auto record = [&](std::vector<int>& into) {
    std::lock_guard lock(mutex);
    into.push_back(sched_getscheduler(0));
  };
  const Tensor x(Shape{8, 2}, 0.0f), y(Shape{8, 1}, 0.0f);
  const auto batches = data::from_generator<LabeledData>([&] {
                         return data::Generator<LabeledData>([&, next = 0]() mutable -> std::optional<LabeledData> {
                           record(producer_policies);
                           if (next++ == 4) return std::nullopt;
                           return LabeledData{x, y};
                         });
                       })
                           .map([&](LabeledData batch) {
                             record(worker_policies);
                             return batch;
                           },
                                data::AUTOTUNE)
                           .prefetch(2);
  Sequential model({layers::Dense(1)});
  model.compile(optimizers::SGD(0.1f), losses::MeanSquaredError());
  struct RecordFitPolicy : Callback {
    int* policy;
    explicit RecordFitPolicy(int* p) : policy(p) {}
    void on_train_batch_begin(int64_t, const Logs&) override { *policy = sched_getscheduler(0); }
  };
  model.fit(batches, {.epochs = 1, .verbose = 0, .callbacks = {std::make_shared<RecordFitPolicy>(&fit_policy)}});
  REQUIRE(fit_policy == SCHED_BATCH);  // else this test shows nothing
  REQUIRE(!producer_policies.empty());
  REQUIRE(!worker_policies.empty());
  for (int policy : producer_policies) CHECK(policy == SCHED_OTHER);
  for (int policy : worker_policies) CHECK(policy == SCHED_OTHER);
}

TEST_CASE("a generator that ends early ends the epoch cleanly through threads and batches") {
  const auto dataset = data::from_generator<int64_t>([]() -> data::Generator<int64_t> {
    return [next = int64_t{0}]() mutable -> std::optional<int64_t> {
      if (next == 5) return std::nullopt;
      return next++;
    };
  });
  const auto pipeline = dataset.map([](int64_t v) { return v * 3; }, 3).batch(2).prefetch(2);
  CHECK(pipeline.cardinality() == data::kUnknownCardinality);
  data::Iteration<std::vector<int64_t>> iteration = pipeline.iterate();
  std::vector<std::vector<int64_t>> batches;
  while (std::optional<std::vector<int64_t>> batch = iteration.next()) batches.push_back(*batch);
  CHECK(batches == std::vector<std::vector<int64_t>>{{0, 3}, {6, 9}, {12}});
  CHECK_FALSE(iteration.next().has_value());  // asking again after the end neither hangs nor restarts
  CHECK_FALSE(iteration.next().has_value());
  CHECK(collect(dataset.take(10)).size() == 5);
  CHECK(collect(pipeline.repeat(2)).size() == 6);
}

// ---- AUTOTUNE ---------------------------------------------------------------------------------

TEST_CASE("prefetch(AUTOTUNE) grows its buffer when the consumer outpaces the producer") {
  const auto dataset = data::range(40).map([](int64_t v) {
    std::this_thread::sleep_for(1ms);
    return v;
  }).prefetch(data::AUTOTUNE);
  data::Iteration<int64_t> iteration = dataset.iterate();
  int64_t count = 0;
  while (iteration.next()) ++count;
  CHECK(count == 40);
  const auto report = iteration.statistics();
  REQUIRE(report.front().name == "prefetch");
  CHECK(report.front().buffer_capacity > 1);
  CHECK(report.front().buffer_capacity <= data::PrefetchTuner::kMaxBufferSize);
  CHECK(report.front().consumer_wait_seconds > 0.0);
}

TEST_CASE("prefetch(AUTOTUNE) keeps a buffer of one when the producer is faster") {
  // The consumer takes 25 ms per element, so the producer has all that time to refill the buffer:
  // enough to hold even when other test suites share the machine (ctest -j).
  const auto dataset = data::range(8).prefetch(data::AUTOTUNE);
  data::Iteration<int64_t> iteration = dataset.iterate();
  int64_t count = 0;
  while (iteration.next()) {
    ++count;
    std::this_thread::sleep_for(25ms);
  }
  CHECK(count == 8);
  CHECK(iteration.statistics().front().buffer_capacity == 1);
}

TEST_CASE("PrefetchTuner doubles on each starvation up to its ceiling") {
  data::PrefetchTuner tuner;
  CHECK(tuner.buffer_size() == 1);
  tuner.on_consumer_starved();
  CHECK(tuner.buffer_size() == 2);
  tuner.on_consumer_starved();
  CHECK(tuner.buffer_size() == 4);
  for (int i = 0; i < 20; ++i) tuner.on_consumer_starved();
  CHECK(tuner.buffer_size() == data::PrefetchTuner::kMaxBufferSize);
}

TEST_CASE("PrefetchTuner doubles while the consumer would wake its producer more than once a millisecond") {
  data::PrefetchTuner tuner;
  int64_t now_ns = 0;
  auto take = [&](int64_t elements, int64_t interval_ns) {
    for (int64_t i = 0; i < elements; ++i) tuner.on_element_taken(now_ns += interval_ns);
  };
  take(4 * data::PrefetchTuner::kWindowElements, 2'000'000);  // one element every 2 ms: a wake-up per element is rare enough
  CHECK(tuner.buffer_size() == 1);
  take(data::PrefetchTuner::kWindowElements, 200'000);  // every 0.2 ms: grows a window at a time
  CHECK(tuner.buffer_size() == 2);
  take(10 * data::PrefetchTuner::kWindowElements, 200'000);
  CHECK(tuner.buffer_size() == data::PrefetchTuner::kMaxBufferSize);  // 8 taken between wake-ups, 1.6 ms
  data::PrefetchTuner moderate;
  now_ns = 0;
  for (int64_t i = 0; i < 10 * data::PrefetchTuner::kWindowElements; ++i) moderate.on_element_taken(now_ns += 300'000);
  CHECK(moderate.buffer_size() == 8);  // 4 taken between wake-ups, 1.2 ms
}

namespace {

// A producer that computes (spins) for `microseconds`, and a consumer that keeps every core busy
// for longer (plain threads here, which ThreadSanitizer can follow).

// Keeps every core but the caller's busy while it lives; the caller spins in consume().
class BusyCores {
 public:
  BusyCores() {
    for (int64_t i = 1; i < data::available_cores(); ++i) {
      spinners_.emplace_back([](std::stop_token stop) {
        while (!stop.stop_requested()) {
        }
      });
    }
  }
  static void consume() { spin_then_return(0, 1000); }

 private:
  std::vector<std::jthread> spinners_;
};

}  // namespace

TEST_CASE("prefetch(AUTOTUNE) delivers every element in order while every core is busy, epoch after epoch") {
  const auto dataset = data::range(150).map([](int64_t v) { return spin_then_return(v, 200); }).prefetch(data::AUTOTUNE);
  std::vector<int64_t> expected(150);
  for (int64_t i = 0; i < 150; ++i) expected[static_cast<size_t>(i)] = i;
  for (int epoch = 0; epoch < 2; ++epoch) {
    data::Iteration<int64_t> iteration = dataset.iterate();
    std::vector<int64_t> delivered;
    {
      BusyCores busy;
      while (std::optional<int64_t> element = iteration.next()) {
        delivered.push_back(*element);
        BusyCores::consume();
      }
    }
    CHECK(delivered == expected);
    const auto report = iteration.statistics();
    REQUIRE(report.front().name == "prefetch");
    CHECK(report.front().elements_produced == 150);
    CHECK(report.front().parallelism == 1);
  }
}

TEST_CASE("an error after prefetch(AUTOTUNE) on a busy machine still ends the epoch, naming the element") {
  const auto dataset = data::range(120)
                           .map([](int64_t v) {
                             if (v == 100) throw Boom(boom_message(v));
                             return spin_then_return(v, 200) * 10;
                           })
                           .prefetch(data::AUTOTUNE);
  std::vector<int64_t> delivered;
  bool threw = false;
  try {
    BusyCores busy;
    data::Iteration<int64_t> iteration = dataset.iterate();
    while (std::optional<int64_t> element = iteration.next()) {
      delivered.push_back(*element);
      BusyCores::consume();
    }
  } catch (const data::PipelineError& error) {
    threw = true;
    CHECK(std::string(error.what()).find(boom_message(100)) != std::string::npos);
  }
  CHECK(threw);
  CHECK(delivered.size() == 100);
}

namespace {

constexpr int64_t kMillisecond = 1'000'000;

// Drives a ParallelismTuner with synthetic time. The tuner judges a window once it has seen 32
// elements and 20 ms; with elements at least 0.65 ms apart, 32 elements are exactly one window.
// Meanwhile the process keeps busy_cores of the 4 cores busy (none unless a test says so).
struct TunerDriver {
  TunerDriver(int64_t initial, int64_t maximum) : tuner(initial, maximum, /*cores=*/4, [this] { return process_cpu_ns; }) {}
  TunerDriver(const TunerDriver&) = delete;  // the tuner's clock points back here

  double busy_cores = 0.0;
  int64_t now_ns = 0;
  int64_t process_cpu_ns = 0;
  data::ParallelismTuner tuner;

  // `elements` takes, `interval_ns` apart, each after the consumer waited `wait_ns`. Returns
  // whether the parallelism changed during them.
  bool feed(int64_t elements, int64_t interval_ns, int64_t wait_ns) {
    bool changed = false;
    for (int64_t i = 0; i < elements; ++i) {
      now_ns += interval_ns;
      process_cpu_ns += static_cast<int64_t>(busy_cores * static_cast<double>(interval_ns));
      changed = tuner.on_element_taken(now_ns, wait_ns) || changed;
    }
    return changed;
  }
  // One window in which the consumer waited half the time (starved) or never (well fed).
  bool starved_window(int64_t interval_ns) { return feed(32, interval_ns, interval_ns / 2); }
  bool fed_window(int64_t interval_ns) { return feed(32, interval_ns, 0); }
};

}  // namespace

TEST_CASE("ParallelismTuner adds a worker when the consumer starves") {
  TunerDriver driver(1, 4);
  CHECK(driver.tuner.parallelism() == 1);
  CHECK(driver.starved_window(kMillisecond));
  CHECK(driver.tuner.parallelism() == 2);
}

TEST_CASE("ParallelismTuner leaves a well-fed consumer alone, and does not judge too short a window") {
  TunerDriver driver(1, 4);
  for (int window = 0; window < 20; ++window) CHECK_FALSE(driver.fed_window(kMillisecond));
  CHECK(driver.tuner.parallelism() == 1);
  TunerDriver few(1, 4);
  CHECK_FALSE(few.feed(31, kMillisecond, kMillisecond / 2));  // 31 elements: not yet a window
  TunerDriver quick(1, 4);
  CHECK_FALSE(quick.feed(100, kMillisecond / 10, kMillisecond / 20));  // 100 elements in 10 ms: neither
  CHECK(quick.tuner.parallelism() == 1);
}

TEST_CASE("ParallelismTuner takes back a worker that brought no throughput, and waits before retrying") {
  TunerDriver driver(1, 4);
  REQUIRE(driver.starved_window(kMillisecond));
  REQUIRE(driver.tuner.parallelism() == 2);
  CHECK(driver.starved_window(kMillisecond));  // the same rate with the new worker: it goes
  CHECK(driver.tuner.parallelism() == 1);
  for (int window = 0; window < 5; ++window) CHECK_FALSE(driver.starved_window(kMillisecond));  // starved, but waiting
  CHECK(driver.tuner.parallelism() == 1);
  int windows_waited = 5;
  while (!driver.starved_window(kMillisecond) && windows_waited < 200) ++windows_waited;
  CHECK(windows_waited < 200);  // it does try again, later
  CHECK(driver.tuner.parallelism() == 2);
}

TEST_CASE("ParallelismTuner adds no worker while the process leaves no core idle") {
  // The model's team keeps 3.7 of 4 cores busy: a starving consumer gets no worker, since a worker
  // that computes could only take a core from the team. When half a core frees up, it gets one.
  TunerDriver driver(1, 4);
  driver.busy_cores = 3.7;
  for (int window = 0; window < 30; ++window) CHECK_FALSE(driver.starved_window(kMillisecond));
  CHECK(driver.tuner.parallelism() == 1);
  driver.busy_cores = 3.4;
  CHECK(driver.starved_window(kMillisecond));
  CHECK(driver.tuner.parallelism() == 2);
}

TEST_CASE("ParallelismTuner keeps a worker that raised throughput") {
  TunerDriver driver(1, 4);
  REQUIRE(driver.starved_window(kMillisecond));
  CHECK_FALSE(driver.fed_window(7 * kMillisecond / 10));  // 1.4 times the rate: kept, no change
  CHECK(driver.tuner.parallelism() == 2);
  CHECK(driver.starved_window(7 * kMillisecond / 10));    // starved again: one more
  CHECK(driver.tuner.parallelism() == 3);
}

TEST_CASE("ParallelismTuner never exceeds its maximum") {
  TunerDriver driver(1, 3);
  int64_t interval_ns = 2 * kMillisecond;
  for (int window = 0; window < 40; ++window) {
    driver.starved_window(interval_ns);
    interval_ns = std::max<int64_t>(interval_ns * 9 / 10, 65 * kMillisecond / 100);  // each worker helps
    CHECK(driver.tuner.parallelism() <= 3);
  }
  CHECK(driver.tuner.parallelism() == 3);
  const auto idle = [] { return int64_t{0}; };
  CHECK(data::ParallelismTuner(8, 3, /*cores=*/4, idle).parallelism() == 3);
  CHECK(data::ParallelismTuner(0, 3, /*cores=*/4, idle).parallelism() == 1);
  CHECK(data::ParallelismTuner(1, 0, /*cores=*/4, idle).parallelism() == 1);
}

TEST_CASE("a parallel map with AUTOTUNE reports a parallelism within the cores") {
  const auto dataset = data::range(200).map(jittered_square, data::AUTOTUNE);
  data::Iteration<int64_t> iteration = dataset.iterate();
  while (iteration.next()) {
  }
  const auto report = iteration.statistics();
  REQUIRE(report.front().name == "map");
  CHECK(report.front().parallelism >= 1);
  CHECK(report.front().parallelism <= data::available_cores());
  CHECK(report.front().elements_produced == 200);
}

// ---- Sequence ---------------------------------------------------------------------------------

namespace {

// Batch i is x = [[i]], y = [i]. Records the calls; optionally throws at one index.
class RecordingSequence : public data::Sequence {
 public:
  explicit RecordingSequence(int64_t batches, int64_t throw_at = -1) : batches_(batches), throw_at_(throw_at) {}
  int64_t size() const override { return batches_; }
  LabeledData get(int64_t index) override {
    jitter(index);
    if (index == throw_at_) throw Boom("cannot load batch " + std::to_string(index));
    {
      std::lock_guard lock(mutex_);
      calls_.push_back(index);
    }
    return {Tensor(Shape{1, 1}, static_cast<float>(index)), Tensor(Shape{1}, static_cast<float>(index))};
  }
  void on_epoch_end() override { ++epochs_ended; }

  std::atomic<int> epochs_ended{0};
  std::vector<int64_t> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  int64_t batches_, throw_at_;
  std::mutex mutex_;
  std::vector<int64_t> calls_;
};

std::vector<int64_t> batch_order(const data::Dataset<LabeledData>& dataset) {
  std::vector<int64_t> order;
  for (const LabeledData& batch : dataset) {
    CHECK(batch.x[0] == batch.y[0]);
    order.push_back(static_cast<int64_t>(batch.x[0]));
  }
  return order;
}

}  // namespace

TEST_CASE("a Sequence's batches arrive in index order, with one worker or several") {
  const std::vector<int64_t> in_order = collect(data::range(25));
  for (const int64_t workers : {1, 3}) {
    CAPTURE(workers);
    auto sequence = std::make_shared<RecordingSequence>(25);
    const auto dataset = data::from_sequence(sequence, {.workers = workers, .max_queue_size = 4});
    CHECK(dataset.cardinality() == 25);
    CHECK(batch_order(dataset) == in_order);
    CHECK(batch_order(dataset) == in_order);
    CHECK(sorted(sequence->calls()).size() == 50);  // each batch fetched once per epoch
  }
  CHECK_THROWS_AS(data::from_sequence(std::make_shared<RecordingSequence>(3), {.workers = 0}), ValueError);
  CHECK_THROWS_AS(data::from_sequence(nullptr), ValueError);
}

TEST_CASE("a shuffled Sequence visits a new permutation each epoch, reproducible under a seed") {
  const std::vector<int64_t> in_order = collect(data::range(30));
  const auto first = data::from_sequence(std::make_shared<RecordingSequence>(30), {.workers = 3, .shuffle = true, .seed = 5});
  const auto again = data::from_sequence(std::make_shared<RecordingSequence>(30), {.workers = 2, .shuffle = true, .seed = 5});
  const std::vector<int64_t> epoch1 = batch_order(first), epoch2 = batch_order(first);
  CHECK(sorted(epoch1) == in_order);
  CHECK(sorted(epoch2) == in_order);
  CHECK(epoch1 != in_order);
  CHECK(epoch2 != epoch1);
  CHECK(batch_order(again) == epoch1);  // the same seed, the same orders (whatever the workers)
  CHECK(batch_order(again) == epoch2);
}

TEST_CASE("on_epoch_end is called once per complete epoch, and not for an epoch cut short") {
  auto sequence = std::make_shared<RecordingSequence>(6);
  const auto dataset = data::from_sequence(sequence, {.workers = 2});
  for (int epoch = 1; epoch <= 3; ++epoch) {
    CHECK(batch_order(dataset).size() == 6);
    CHECK(sequence->epochs_ended == epoch);
  }
  for (const LabeledData& batch : dataset) {
    (void)batch;
    break;
  }
  CHECK(sequence->epochs_ended == 3);
  data::Iteration<LabeledData> iteration = dataset.iterate();
  while (iteration.next()) {
  }
  CHECK_FALSE(iteration.next().has_value());  // asking past the end does not end the epoch twice
  CHECK(sequence->epochs_ended == 4);
}

TEST_CASE("an exception in a Sequence's get(i) surfaces with its position") {
  for (const int64_t workers : {1, 3}) {
    CAPTURE(workers);
    auto sequence = std::make_shared<RecordingSequence>(10, /*throw_at=*/6);
    const auto dataset = data::from_sequence(sequence, {.workers = workers});
    std::vector<int64_t> delivered;
    bool threw = false;
    try {
      for (const LabeledData& batch : dataset) delivered.push_back(static_cast<int64_t>(batch.x[0]));
    } catch (const data::PipelineError& error) {
      threw = true;
      CHECK(std::string(error.what()).find("element 6: cannot load batch 6") != std::string::npos);
      CHECK_THROWS_AS(std::rethrow_if_nested(error), Boom);
    }
    CHECK(threw);
    CHECK(delivered == collect(data::range(6)));
    CHECK(sequence->epochs_ended == 0);
  }
}

TEST_CASE("map's num_parallel_calls beyond what a machine can use is capped, with a warning") {
  StreamCapture capture(std::cerr);
  const auto doubled = data::range(200).map([](int64_t v) { return 2 * v; }, 100000);
  data::Iteration<int64_t> iteration = doubled.iterate();
  int64_t expected = 0;
  while (std::optional<int64_t> value = iteration.next()) CHECK(*value == 2 * expected++);
  CHECK(expected == 200);
  CHECK(iteration.statistics().front().parallelism == max_pipeline_threads());
  CHECK(capture.text().find("map: num_parallel_calls asked for 100000 threads; using " +
                            std::to_string(max_pipeline_threads())) != std::string::npos);
}
