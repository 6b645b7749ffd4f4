// The quickstart: Keras's classic Fashion-MNIST model, written with kiln.
// Build: scripts/build.sh   Run: build/bin/kiln-quickstart
#include <kiln/kiln.hpp>
using namespace kiln;

int main() {
  auto [train, test] = datasets::load_idx("/usr/share/datasets/fashion-mnist");  // Fashion-MNIST

  Sequential model({
      layers::Flatten({28, 28}),
      layers::Dense(128, Activation::ReLU),
      layers::Dropout(0.2),
      layers::Dense(10, Activation::Softmax),
  });
  model.compile(optimizers::Adam(1e-3), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.summary();
  History h = model.fit(train.x, train.y, {.batch_size = 64, .epochs = 10, .validation_data = test});
  model.save_weights("fashion.weights.npz");
}
