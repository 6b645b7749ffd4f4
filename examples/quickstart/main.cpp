// The quickstart: Keras's classic Fashion-MNIST model, fed by a tf.data-style pipeline.
// Build: scripts/build.sh   Run: build/bin/kiln-quickstart
#include <kiln/kiln.hpp>
using namespace kiln;

int main() {
  auto [train, test] = datasets::load_idx("/usr/share/datasets/fashion-mnist");  // Fashion-MNIST
  auto train_ds = data::from_tensor_slices(train.x, train.y)
                      .shuffle(10000, /*seed=*/42)
                      .batch(64)
                      .prefetch(AUTOTUNE);
  auto test_ds = data::from_tensor_slices(test.x, test.y).batch(64).prefetch(AUTOTUNE);

  Sequential model({
      layers::Flatten({28, 28}),
      layers::Dense(128, Activation::ReLU),
      layers::Dropout(0.2),
      layers::Dense(10, Activation::Softmax),
  });
  model.compile(optimizers::Adam(1e-3), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.summary();
  History h = model.fit(train_ds, {.epochs = 10, .validation_data = test_ds});
  model.save_weights("fashion.weights.npz");
}
