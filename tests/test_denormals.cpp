// Tests of DenormalsFlushedToZero: denormals flush on the caller and every team thread while a
// scope lives, each thread's mode comes back after it, nesting and exceptions included, and the
// model's forward pass and training step compute in that mode.
#include "kiln/denormals.hpp"

#include "kiln/callbacks.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/losses.hpp"
#include "kiln/model.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/parallel.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <memory>
#include <stdexcept>
#include <vector>

namespace {

using namespace kiln;

#if defined(__x86_64__) || defined(__i386__)

// 2^-140: a denormal float. Read through a volatile so the compiler cannot fold the arithmetic.
volatile float denormal = 7.174648e-43f;

// Whether this thread computes with the denormal as zero (DAZ) and as the mode says it should.
bool reads_denormal_as_zero() { return denormal * 1.0f == 0.0f; }

// Whether every tile of a loop run by a `threads`-strong team flushes (or, with false, none does).
// Each tile waits until a second thread has taken one, so the helpers' mode is checked too.
bool whole_team_flushes(int threads, bool expected) {
  set_num_threads(threads);
  std::vector<int> agrees(static_cast<size_t>(threads), 0);
  std::mutex mutex;
  std::set<std::thread::id> threads_seen;
  std::atomic<size_t> threads_counted{0};
  parallel_tiles(threads, [&](int64_t first, int64_t end) {
    {
      std::lock_guard lock(mutex);
      threads_seen.insert(std::this_thread::get_id());
      threads_counted = threads_seen.size();
    }
    // Waits on the atomic, not the mutex: a thread spinning on the mutex could keep taking it
    // back before a helper woken to insert itself gets its turn, on a loaded machine for seconds.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Sleeps rather than yields: on a loaded machine a yield may hand the core straight back to this
    // thread, where a sleep leaves it to the woken helper.
    while (threads_counted.load() < 2 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (int64_t tile = first; tile < end; ++tile) {
      agrees[static_cast<size_t>(tile)] = denormals_flushed_to_zero() == expected && reads_denormal_as_zero() == expected;
    }
  });
  CHECK(threads_seen.size() >= 2);
  for (int agree : agrees) {
    if (!agree) return false;
  }
  return true;
}

TEST_CASE("denormals: a scope flushes them on the caller and its team, and restores the mode after") {
  const int threads = 2;
  REQUIRE(denormal != 0.0f);
  CHECK_FALSE(denormals_flushed_to_zero());
  CHECK(whole_team_flushes(threads, false));
  {
    const DenormalsFlushedToZero flush;
    CHECK(denormals_flushed_to_zero());
    CHECK(reads_denormal_as_zero());
    CHECK(whole_team_flushes(threads, true));
    // A result below the normal range comes out as zero (FTZ), not as a denormal.
    volatile float smallest_normal = 1.17549435e-38f;
    CHECK(smallest_normal * 0.5f == 0.0f);
  }
  CHECK_FALSE(denormals_flushed_to_zero());
  CHECK_FALSE(reads_denormal_as_zero());
  CHECK(whole_team_flushes(threads, false));
}

TEST_CASE("denormals: nested scopes keep flushing until the outermost ends, through exceptions") {
  {
    const DenormalsFlushedToZero outer;
    {
      const DenormalsFlushedToZero inner;
      CHECK(whole_team_flushes(2, true));
    }
    CHECK(denormals_flushed_to_zero());
    CHECK(whole_team_flushes(2, true));
  }
  CHECK(whole_team_flushes(2, false));
  CHECK_THROWS_AS([] {
    const DenormalsFlushedToZero flush;
    throw std::runtime_error("thrown inside the scope");
  }(), std::runtime_error);
  CHECK_FALSE(denormals_flushed_to_zero());
  CHECK(whole_team_flushes(2, false));
}

TEST_CASE("denormals: helpers that ran a flushed loop run the next caller's loops in that caller's mode") {
  {
    const DenormalsFlushedToZero flush;
    CHECK(whole_team_flushes(3, true));
  }
  // Another thread, which never flushed, borrows the same helpers.
  bool other_thread_agrees = false;
  std::thread([&] { other_thread_agrees = whole_team_flushes(3, false); }).join();
  CHECK(other_thread_agrees);
  CHECK(whole_team_flushes(3, false));
  set_num_threads(2);
}

// A Dense layer whose product lands below the normal range: 2^-70 * 2^-70 = 2^-140.
Sequential tiny_product_model() {
  Sequential model({layers::Dense(1, Activation::Linear, /*input_dim=*/1)});
  model.compile(optimizers::SGD(0.1f), losses::MeanSquaredError());
  model.build(Shape{1});
  for (Parameter* parameter : model.layer(0).parameters()) {
    parameter->value[0] = parameter->name == "kernel" ? 8.4703295e-22f : 0.0f;
  }
  return model;
}

TEST_CASE("denormals: the model's forward pass and training step flush them, and leave the mode as it was") {
  set_num_threads(2);
  Sequential model = tiny_product_model();
  const Tensor x(Shape{1, 1}, 8.4703295e-22f), y(Shape{1, 1}, 0.0f);
  CHECK(model.predict(x)[0] == 0.0f);  // 2^-140 without the flush
  CHECK(model.forward(x)[0] == 0.0f);
  CHECK_FALSE(denormals_flushed_to_zero());
  // The prediction flushes to zero, so the loss and its gradient are zero and SGD moves nothing.
  // Without the flush the gradient would be a denormal, and the bias would move by one.
  const std::vector<float> before = model.get_weights();
  CHECK(model.train_on_batch(x, y) == 0.0);
  CHECK(model.get_weights() == before);
  CHECK_FALSE(denormals_flushed_to_zero());
  CHECK(whole_team_flushes(2, false));
}

// Records whether the calling thread flushed denormals at each step's end.
class FlushModeRecorder : public Callback {
 public:
  void on_train_batch_end(int64_t, const Logs&) override { flushed.push_back(denormals_flushed_to_zero()); }
  std::vector<bool> flushed;
};

TEST_CASE("denormals: fit flushes them for its whole run, callbacks included, and leaves the mode as it was") {
  set_num_threads(2);
  Sequential model = tiny_product_model();
  const Tensor x(Shape{4, 1}, 8.4703295e-22f), y(Shape{4, 1}, 0.0f);
  const std::vector<float> before = model.get_weights();
  auto recorder = std::make_shared<FlushModeRecorder>();
  model.fit(x, y, {.batch_size = 2, .epochs = 2, .verbose = 0, .callbacks = {recorder}});
  CHECK(model.get_weights() == before);
  CHECK(recorder->flushed == std::vector<bool>(4, true));
  CHECK_FALSE(denormals_flushed_to_zero());
  CHECK(whole_team_flushes(2, false));
  CHECK(model.evaluate(x, y, {.verbose = 0}).at("loss") == 0.0);
  CHECK_FALSE(denormals_flushed_to_zero());
}

#endif

}  // namespace
