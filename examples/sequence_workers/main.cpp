// A Keras Sequence (PyDataset) with workers, and the same batches as a Dataset, both timed. The
// Python it mirrors:
//   class FashionBatches(keras.utils.PyDataset):
//       def __init__(self, x, y, batch_size, **kwargs):
//           super().__init__(**kwargs)
//           self.x, self.y, self.batch_size = x, y, batch_size
//       def __len__(self):
//           return math.ceil(len(self.x) / self.batch_size)
//       def __getitem__(self, idx):
//           rows = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
//           return augment(self.x[rows]), self.y[rows]
//   model.fit(FashionBatches(x, y, 64, workers=2, max_queue_size=10, shuffle=True), epochs=3)
//   # the same batches as a Dataset:
//   ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64).shuffle(len(x) // 64)
//   ds = ds.map(augment_xy, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
//   model.fit(ds, epochs=3)
// Build: scripts/build.sh   Run: build/bin/kiln-example-sequence-workers [EPOCHS]   (default 3)
#include <kiln/kiln.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>

using namespace kiln;

namespace {

// A random flip, brightness and contrast for each image of a batch x [n, 28, 28].
Tensor augment(Tensor x) {
  const Shape shape = x.shape();
  x.reshape(Shape{shape[0], shape[1], shape[2], 1});
  Tensor images = image::random_flip_left_right(x, next_seed());
  images = image::random_brightness(images, 0.1f, next_seed());
  images = image::random_contrast(images, 0.8f, 1.2f, next_seed());
  images.reshape(shape);
  return images;
}

// Keras's Sequence: how many batches, and how to make batch i. get() runs on the workers, several
// at once, so it only reads shared state.
class FashionBatches : public data::Sequence {
 public:
  FashionBatches(const LabeledData& data, int64_t batch_size) : data_(data), batch_size_(batch_size) {}
  int64_t size() const override { return (data_.x.rows() + batch_size_ - 1) / batch_size_; }
  LabeledData get(int64_t index) override {
    std::vector<int64_t> rows(static_cast<size_t>(std::min(batch_size_, data_.x.rows() - index * batch_size_)));
    std::iota(rows.begin(), rows.end(), index * batch_size_);
    LabeledData batch = data::gather_rows(data_, rows);
    batch.x = augment(std::move(batch.x));
    return batch;
  }

 private:
  const LabeledData& data_;
  int64_t batch_size_;
};

// Trains a fresh model on `batches` and returns the seconds per epoch (the median).
double train(const data::Dataset<LabeledData>& batches, int epochs, const char* title) {
  std::printf("== %s\n", title);
  set_random_seed(1);
  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  std::vector<double> seconds;
  std::chrono::steady_clock::time_point start;
  callbacks::LambdaCallback timer({
      .on_epoch_begin = [&](int, const Logs&) { start = std::chrono::steady_clock::now(); },
      .on_epoch_end = [&](int, const Logs&) {
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      },
  });
  model.fit(batches, {.epochs = epochs, .verbose = 2, .callbacks = {timer}});
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 3;
  auto [train_set, unused_test_set] = datasets::load_idx(datasets::kFashionMnistDir);
  const int64_t batch_size = 64;

  auto sequence = data::from_sequence(std::make_shared<FashionBatches>(train_set, batch_size),
                                      {.workers = 2, .max_queue_size = 10, .shuffle = true});
  const int64_t batches = (train_set.x.rows() + batch_size - 1) / batch_size;
  auto dataset = data::from_tensor_slices(train_set.x, train_set.y)
                     .batch(batch_size)
                     .shuffle(batches)
                     .map([](LabeledData batch) {
                       batch.x = augment(std::move(batch.x));
                       return batch;
                     }, AUTOTUNE)
                     .prefetch(AUTOTUNE);

  const double sequence_seconds = train(sequence, epochs, "Sequence, 2 workers");
  const double dataset_seconds = train(dataset, epochs, "Dataset: batch, shuffle, map(AUTOTUNE), prefetch(AUTOTUNE)");
  std::printf("median epoch: Sequence %.3f s, Dataset %.3f s\n", sequence_seconds, dataset_seconds);
}
