// The optimized order: cache -> shuffle(len) -> batch -> a vectorised map(augment) on whole
// batches -> prefetch. The Python it mirrors:
//   dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
//   dataset = dataset.cache()                       # what does not change between epochs, once
//   dataset = dataset.shuffle(len(x_train))         # a full shuffle of the cached elements
//   dataset = dataset.batch(64)                     # batch first ...
//   dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)  # ... then augment whole batches
//   dataset = dataset.prefetch(tf.data.AUTOTUNE)
//   model.fit(dataset, epochs=10)
// It also times the same augmentation mapped per image, before batch(), for comparison.
// Build: scripts/build.sh   Run: build/bin/kiln-example-optimized-order [EPOCHS]   (default 10)
#include <kiln/kiln.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace kiln;

namespace {

// A random flip, brightness and contrast for each image of x: [n, 28, 28] or one [28, 28] image.
// The image ops take [n, height, width, channels] (or [height, width, channels]) and draw per image.
Tensor augment(Tensor x) {
  const Shape shape = x.shape();
  x.reshape(shape.rank() == 3 ? Shape{shape[0], shape[1], shape[2], 1} : Shape{shape[0], shape[1], 1});
  Tensor images = image::random_flip_left_right(x, next_seed());
  images = image::random_brightness(images, 0.1f, next_seed());
  images = image::random_contrast(images, 0.8f, 1.2f, next_seed());
  images.reshape(shape);
  return images;
}

LabeledData augment_xy(LabeledData data) {
  data.x = augment(std::move(data.x));
  return data;
}

// Seconds to run through every batch of one epoch, without training.
double seconds_per_pass(const data::Dataset<LabeledData>& dataset) {
  const auto start = std::chrono::steady_clock::now();
  for (const LabeledData& batch : dataset) static_cast<void>(batch);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 10;
  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);
  const int64_t n = train.x.rows();

  auto dataset = data::from_tensor_slices(train.x, train.y)
                     .cache()
                     .shuffle(n)
                     .batch(64)
                     .map(augment_xy, AUTOTUNE)
                     .prefetch(AUTOTUNE);

  // The same augmentation on each image before batching: one call, and one tensor, per image.
  auto per_image = data::from_tensor_slices(train.x, train.y).cache().shuffle(n).map(augment_xy, AUTOTUNE).batch(64).prefetch(AUTOTUNE);
  std::printf("one pass without training: augmenting batches %.3f s, augmenting each image %.3f s\n",
              seconds_per_pass(dataset), seconds_per_pass(per_image));

  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.fit(dataset, {.epochs = epochs, .verbose = 2});
  const Logs result = model.evaluate(test.x, test.y, {.verbose = 0});
  std::printf("test accuracy: %.4f\n", result.at("accuracy"));
}
