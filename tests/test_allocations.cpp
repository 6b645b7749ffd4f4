// The training step allocates nothing once its buffers have their sizes: every global operator
// new in this test program goes through a counter, which the test reads around steady-state steps.
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long long> allocation_count{0};
}  // namespace

void* operator new(std::size_t size) {
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  const auto align = static_cast<std::size_t>(alignment);
  if (void* pointer = std::aligned_alloc(align, (size + align - 1) / align * align)) return pointer;
  throw std::bad_alloc();
}
void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t, std::align_val_t) noexcept { std::free(pointer); }

using namespace kiln;

TEST_CASE("train_on_batch allocates nothing in steady state") {
  set_random_seed(1);
  // The reference model at full size, so the GEMMs take the same paths as in real training.
  Sequential model({layers::Flatten(Shape{28, 28}), layers::Dense(128, Activation::ReLU), layers::Dropout(0.2f),
                    layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  Tensor x(Shape{64, 28, 28}, 0.5f), y(Shape{64});
  Tensor last_x(Shape{32, 28, 28}, 0.25f), last_y(Shape{32});
  for (int64_t i = 0; i < 64; ++i) y[i] = static_cast<float>(i % 10);
  for (int64_t i = 0; i < 32; ++i) last_y[i] = static_cast<float>(i % 10);

  model.train_on_batch(x, y);  // first steps size every buffer and the optimizer's slots
  model.train_on_batch(last_x, last_y);
  const long long before = allocation_count.load();
  for (int step = 0; step < 5; ++step) {
    model.train_on_batch(x, y);
    model.train_on_batch(last_x, last_y);  // a smaller last batch, then full size again
  }
  CHECK(allocation_count.load() - before == 0);

  // With sample weights too.
  const Tensor weights(Shape{64}, 0.5f), last_weights(Shape{32}, 2.0f);
  model.train_on_batch(x, y, weights);
  const long long before_weighted = allocation_count.load();
  for (int step = 0; step < 5; ++step) {
    model.train_on_batch(x, y, weights);
    model.train_on_batch(last_x, last_y, last_weights);
  }
  CHECK(allocation_count.load() - before_weighted == 0);
}

TEST_CASE("a convnet's train_on_batch allocates nothing in steady state") {
  set_random_seed(2);
  // Every image layer, at a size where the loops and GEMMs take the team's paths.
  Sequential model({layers::Reshape({16, 16, 1}, Shape{16, 16}),
                    layers::Conv2D(8, 3, {.padding = layers::Padding::Same, .activation = Activation::ReLU}),
                    layers::BatchNormalization(), layers::MaxPooling2D(2), layers::Conv2D(16, 3, {.activation = Activation::ReLU}),
                    layers::AveragePooling2D(2), layers::GlobalAveragePooling2D(), layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  Tensor x(Shape{64, 16, 16}, 0.5f), y(Shape{64});
  Tensor last_x(Shape{24, 16, 16}, 0.25f), last_y(Shape{24});
  for (int64_t i = 0; i < 64 * 256; ++i) x[i] = static_cast<float>(i % 7) / 7.0f;
  for (int64_t i = 0; i < 64; ++i) y[i] = static_cast<float>(i % 10);
  for (int64_t i = 0; i < 24; ++i) last_y[i] = static_cast<float>(i % 10);

  model.train_on_batch(x, y);
  model.train_on_batch(last_x, last_y);
  const long long before = allocation_count.load();
  for (int step = 0; step < 5; ++step) {
    model.train_on_batch(x, y);
    model.train_on_batch(last_x, last_y);
  }
  CHECK(allocation_count.load() - before == 0);
}
