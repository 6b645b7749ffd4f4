// Tests for kiln/data/diagnose.hpp: the pipeline doctor's advice and predictions on given figures,
// and on pipelines that run.
#include "kiln/kiln.hpp"
#include "stream_capture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <thread>

using namespace kiln;
using data::ConsumerTimes;
using data::StageReport;

namespace {

StageReport stage(std::string name, int64_t parallelism = 0, double busy_seconds = 0.0) {
  StageReport report;
  report.name = std::move(name);
  report.parallelism = parallelism;
  report.busy_seconds = busy_seconds;
  return report;
}

// prefetch(AUTOTUNE), its producer busy `busy_seconds` (its input's time included).
StageReport prefetch_stage(double busy_seconds = 0.0) {
  StageReport report = stage("prefetch", 1, busy_seconds);
  report.autotuned = true;
  return report;
}

StageReport shuffle_stage(int64_t buffer_size, int64_t elements) {
  StageReport report = stage("shuffle");
  report.buffer_capacity = buffer_size;
  report.elements_produced = elements;
  return report;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void sleep_microseconds(int microseconds) { std::this_thread::sleep_for(std::chrono::microseconds(microseconds)); }

}  // namespace

TEST_CASE("diagnose: training that barely waits for input needs no change") {
  const auto d = data::diagnose({prefetch_stage(), stage("batch"), stage("tensor_slices")}, ConsumerTimes{2.0, 0.1, 3.0}, 2);
  CHECK(d.input_bound == doctest::Approx(0.05));
  CHECK(d.bound_by == "training");
  CHECK(d.advice.empty());
  CHECK(d.predicted_speedup() == doctest::Approx(1.0));
  CHECK(d.notes.empty());
}

TEST_CASE("diagnose: without prefetch, the advice is prefetch: training and input overlap on a second core") {
  const std::vector<StageReport> stages = {stage("batch"), stage("map", 0, 1.0), stage("shuffle"), stage("tensor_slices")};
  // Training 1.2 s, input 0.8 s, two idle cores: the input hides behind training.
  auto d = data::diagnose(stages, ConsumerTimes{2.0, 0.8, 2.4}, 2);
  CHECK(d.input_bound == doctest::Approx(0.4));
  CHECK(mentions(d.advice, "prefetch(AUTOTUNE)"));
  CHECK(d.bound_by == "map (1 thread), on the training thread");
  CHECK(d.predicted_epoch_seconds == doctest::Approx(1.2));
  CHECK(d.predicted_speedup() == doctest::Approx(2.0 / 1.2));
  CHECK(mentions(d.one_line(), "try add .prefetch(AUTOTUNE)"));
  CHECK(mentions(d.text(), "predicted: epoch 1.200 s"));
  // Half a core used by another process: half of the shorter stretch hides.
  d = data::diagnose(stages, ConsumerTimes{2.0, 0.8, 2.4, 3.4}, 2);
  CHECK(d.cores == doctest::Approx(1.5));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(1.6));
}

TEST_CASE("diagnose: with one core left by other processes, prefetch cannot overlap anything") {
  const std::vector<StageReport> stages = {stage("batch"), stage("map", 0, 1.0), stage("tensor_slices")};
  // Over the 2 s epoch the machine was busy 4.4 s: 2.4 of them this process's, 2 another's (one core).
  const auto d = data::diagnose(stages, ConsumerTimes{2.0, 1.0, 2.4, 4.4}, 2);
  CHECK(d.cores == doctest::Approx(1.0));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(2.0));
  CHECK(d.predicted_speedup() == doctest::Approx(1.0));
}

TEST_CASE("diagnose: prefetched but still waiting on a map of one thread: parallelise the map") {
  const auto d = data::diagnose({prefetch_stage(), stage("batch"), stage("map", 0, 3.0), stage("tensor_slices")},
                                ConsumerTimes{4.0, 2.0, 5.0}, 2);
  CHECK(d.bound_by == "map (1 thread)");
  CHECK(mentions(d.advice, "map(..., AUTOTUNE)"));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(2.0));  // the map's 3 s over 2 cores is less than training's 2 s
}

TEST_CASE("diagnose: an AUTOTUNE map at one thread already has what training leaves: no advice") {
  StageReport tuned = stage("map", 1, 3.0);
  tuned.autotuned = true;
  const auto d = data::diagnose({prefetch_stage(), stage("batch"), tuned, stage("tensor_slices")},
                                ConsumerTimes{4.0, 2.0, 7.5}, 2);
  CHECK(d.bound_by == "map (AUTOTUNE, 1 thread)");
  CHECK(d.advice.empty());
  CHECK(d.predicted_speedup() == doctest::Approx(1.0));
}

TEST_CASE("diagnose: a fixed prefetch whose producer keeps up on average: a deeper buffer") {
  StageReport fixed = stage("prefetch", 1, 1.5);
  fixed.buffer_capacity = 1;
  // Training 2 s, the producer busy 1.5 s, yet the consumer waited 1 s: bursts.
  const auto d = data::diagnose({fixed, stage("batch", 0, 1.5), stage("from_generator", 0, 1.5)}, ConsumerTimes{3.0, 1.0, 4.0}, 2);
  CHECK(d.bound_by == "prefetch(1): bursts of input");
  CHECK(mentions(d.advice, "prefetch(AUTOTUNE), or a larger buffer"));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(2.0));
  // A producer slower than training on average needs more than a buffer.
  fixed.busy_seconds = 2.5;
  const auto slow = data::diagnose({fixed, stage("batch", 0, 2.5), stage("from_generator", 0, 2.5)}, ConsumerTimes{3.0, 1.0, 4.0}, 2);
  CHECK(mentions(slow.advice, "cache()"));
}

TEST_CASE("diagnose: a tuned map of single elements feeding batch(): batch first, map whole batches") {
  StageReport per_element = stage("map", 1, 1.5);
  per_element.autotuned = true;
  per_element.elements_produced = 6400;
  StageReport batch = stage("batch", 0, 1.8);
  batch.elements_produced = 100;
  const auto d = data::diagnose({prefetch_stage(2.0), batch, per_element, stage("tensor_slices", 0, 0.1)},
                                ConsumerTimes{3.0, 1.0, 4.5}, 2);
  CHECK(d.bound_by == "map (AUTOTUNE, 1 thread), one element at a time");
  CHECK(mentions(d.advice, "batch() before the map"));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(2.0));  // the best case: training alone
  // A map of whole batches (as many elements as batch() hands on) gets no such advice.
  per_element.elements_produced = 100;
  CHECK(!mentions(data::diagnose({prefetch_stage(2.0), batch, per_element}, ConsumerTimes{3.0, 1.0, 4.5}, 2).advice, "batch()"));
}

TEST_CASE("diagnose: a map with more threads than cores is named, input-bound or not") {
  const auto d = data::diagnose({prefetch_stage(), stage("batch"), stage("map", 16, 2.0), stage("tensor_slices")},
                                ConsumerTimes{3.0, 0.05, 4.0}, 2);
  CHECK(d.bound_by == "map (16 threads)");
  CHECK(mentions(d.advice, "instead of 16 threads on 2 cores"));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(2.0));  // without the training thread's CPU time, the floor
  // Training took 2.5 s, but its thread was on a core for 1 s of them: given its cores back, it
  // takes 1 s, and the 0.5 s wait for input stays.
  const auto measured = data::diagnose({prefetch_stage(), stage("batch"), stage("map", 16, 2.0), stage("tensor_slices")},
                                       ConsumerTimes{3.0, 0.5, 4.0, -1.0, 1.0}, 2);
  CHECK(measured.predicted_epoch_seconds == doctest::Approx(1.5));
  CHECK(mentions(measured.text(), "ran on a core 1.000 s"));
  // As many threads as cores is not too many.
  const auto fine = data::diagnose({prefetch_stage(), stage("map", 2, 2.0)}, ConsumerTimes{3.0, 0.05, 4.0}, 2);
  CHECK(fine.advice.empty());
}

TEST_CASE("diagnose: prefetched, input-bound on a generator's reads: cache them") {
  const std::vector<StageReport> stages = {prefetch_stage(2.0), stage("batch", 0, 2.0), stage("from_generator", 0, 1.8)};
  const auto d = data::diagnose(stages, ConsumerTimes{3.0, 2.0, 3.5}, 2);
  CHECK(d.bound_by == "from_generator");  // 1.8 s of its own, against batch's 0.2 s
  CHECK(mentions(d.advice, "cache()"));
  CHECK(d.predicted_epoch_seconds == doctest::Approx(1.0));
  // Cached already: the slowest stage is named, and there is no single change to offer.
  std::vector<StageReport> cached = {prefetch_stage(2.0), stage("batch", 0, 2.0), stage("cache", 0, 0.5)};
  const auto c = data::diagnose(cached, ConsumerTimes{3.0, 2.0, 3.5}, 2);
  CHECK(c.bound_by == "batch");
  CHECK(c.advice.empty());
  CHECK(c.predicted_speedup() == doctest::Approx(1.0));
  // Rows already in memory: nothing to cache.
  std::vector<StageReport> in_memory = {prefetch_stage(2.0), stage("batch", 0, 2.0), stage("tensor_slices", 0, 1.8)};
  CHECK(data::diagnose(in_memory, ConsumerTimes{3.0, 2.0, 3.5}, 2).advice.empty());
}

TEST_CASE("diagnose: a shuffle buffer under a tenth of its elements gets a note, a larger one none") {
  auto small = data::diagnose({stage("batch"), shuffle_stage(100, 10000), stage("tensor_slices")}, ConsumerTimes{1, 0, 1}, 2);
  REQUIRE(small.notes.size() == 1);
  CHECK(mentions(small.notes[0], "shuffle(100) holds 1.0% of the 10000 elements"));
  CHECK(mentions(small.notes[0], "shuffle(10000)"));
  auto large = data::diagnose({stage("batch"), shuffle_stage(5000, 10000), stage("tensor_slices")}, ConsumerTimes{1, 0, 1}, 2);
  CHECK(large.notes.empty());
}

TEST_CASE("diagnose: cache() above a map warns of frozen random draws; below one it does not") {
  auto after = data::diagnose({prefetch_stage(), stage("cache"), stage("map"), stage("tensor_slices")}, ConsumerTimes{1, 0, 1}, 2);
  REQUIRE(after.notes.size() == 1);
  CHECK(mentions(after.notes[0], "every epoch sees the same draws"));
  auto before = data::diagnose({prefetch_stage(), stage("map"), stage("cache"), stage("tensor_slices")}, ConsumerTimes{1, 0, 1}, 2);
  CHECK(before.notes.empty());
}

TEST_CASE("diagnose on a running iteration: the consumer's input time against its own work") {
  // A map of 2 ms per element on the consumer's thread, and 2 ms of "training" per element.
  auto dataset = data::range(20).map([](int64_t i) {
    sleep_microseconds(2000);
    return i;
  });
  auto iteration = dataset.iterate();
  int64_t count = 0;
  while (iteration.next()) {
    sleep_microseconds(2000);
    ++count;
  }
  CHECK(count == 20);
  const data::ConsumerTimes times = iteration.consumer_times();
  CHECK(times.epoch_seconds >= 0.079);   // 40 sleeps of 2 ms, less the last element's training
  CHECK(times.input_seconds >= 0.040);   // 20 maps of 2 ms
  CHECK(times.input_seconds < times.epoch_seconds);
  const data::Diagnosis d = data::diagnose(iteration);
  CHECK(d.input_bound > kiln::data::kInputBoundShare);
  CHECK(mentions(d.advice, "prefetch(AUTOTUNE)"));
  CHECK(d.bound_by == "map (1 thread), on the training thread");
  // Overlapped, no shorter than the longer stretch and no longer than both; where it falls between
  // depends on the cores other processes leave (other tests may be running).
  const double training = times.epoch_seconds - times.input_seconds;
  CHECK(d.predicted_epoch_seconds >= std::max(training, times.input_seconds) - 1e-9);
  CHECK(d.predicted_epoch_seconds <= times.epoch_seconds + 1e-9);
}

TEST_CASE("fit prints the doctor's line after the first epoch only, when it has advice") {
  set_random_seed(3);
  Tensor x(Shape{64, 4});
  Tensor y(Shape{64});
  for (int64_t i = 0; i < 64; ++i) {
    x.at(i, i % 4) = 1.0f;
    y.values()[static_cast<size_t>(i)] = static_cast<float>(i % 2);
  }
  auto slow_input = data::from_tensor_slices(x, y).map([](LabeledData element) {
    sleep_microseconds(1000);
    return element;
  }).batch(8);
  Sequential model({layers::Dense(2, Activation::Softmax)});
  model.compile(optimizers::SGD(), losses::SparseCategoricalCrossentropy());
  std::string printed;
  {
    testing::StreamCapture capture(std::cout);
    model.fit(slow_input, {.epochs = 2, .verbose = 2});
    printed = capture.text();
  }
  CHECK(mentions(printed, "pipeline: input"));
  CHECK(mentions(printed, "try add .prefetch(AUTOTUNE)"));
  CHECK(printed.find("pipeline: input") == printed.rfind("pipeline: input"));  // once
  CHECK(printed.find("Epoch 2/2") > printed.find("pipeline: input"));          // after the first epoch
  {
    testing::StreamCapture capture(std::cout);
    model.fit(slow_input, {.epochs = 1, .verbose = 0});
    CHECK(capture.text().empty());
  }
}
