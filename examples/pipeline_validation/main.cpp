// The complete pipeline with a validation set: a training dataset that shuffles, batches and
// prefetches, a validation dataset that batches and prefetches, and the classic model. The Python
// it mirrors:
//   train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(10000).batch(32).prefetch(AUTOTUNE)
//   val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(32).prefetch(AUTOTUNE)
//   model = keras.Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(128, activation="relu"),
//                             layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
//   model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//   model.fit(train_ds, validation_data=val_ds, epochs=10)
// Build: scripts/build.sh   Run: build/bin/kiln-example-pipeline-validation [EPOCHS]   (default 10)
#include <kiln/kiln.hpp>

#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 10;
  auto [train, validation] = datasets::load_idx(datasets::kFashionMnistDir);

  auto train_ds = data::from_tensor_slices(train.x, train.y).shuffle(10000).batch(32).prefetch(AUTOTUNE);
  auto val_ds = data::from_tensor_slices(validation.x, validation.y).batch(32).prefetch(AUTOTUNE);

  Sequential model({
      layers::Flatten({28, 28}),
      layers::Dense(128, Activation::ReLU),
      layers::Dropout(0.2f),
      layers::Dense(10, Activation::Softmax),
  });
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.fit(train_ds, {.epochs = epochs, .verbose = 2, .validation_data = val_ds});
}
