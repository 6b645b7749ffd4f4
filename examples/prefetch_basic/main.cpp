// Basic prefetching: the tf.data idiom that prepares the next batches on a pipeline thread while
// the model trains on this one. The Python it mirrors:
//   dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
//   dataset = dataset.shuffle(10000).batch(32).prefetch(tf.data.AUTOTUNE)
//   model.fit(dataset, epochs=10)
// Build: scripts/build.sh   Run: build/bin/kiln-example-prefetch-basic [EPOCHS]   (default 10)
#include <kiln/kiln.hpp>

#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 10;
  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);

  auto dataset = data::from_tensor_slices(train.x, train.y).shuffle(10000).batch(32).prefetch(AUTOTUNE);

  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.fit(dataset, {.epochs = epochs, .verbose = 2});
}
