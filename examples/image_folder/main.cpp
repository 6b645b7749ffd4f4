// A folder of images, one subfolder per class, through image_dataset_from_directory, then
// prefetch. The Python it mirrors:
//   train_ds = keras.utils.image_dataset_from_directory("images/train", validation_split=0.2,
//       subset="both", seed=1, image_size=(224, 224), batch_size=32)
//   train_ds, val_ds = train_ds
//   train_ds = train_ds.prefetch(buffer_size=tf.data.AUTOTUNE)
//   val_ds = val_ds.prefetch(buffer_size=tf.data.AUTOTUNE)
//   model.fit(train_ds, validation_data=val_ds, epochs=2)
// Build: scripts/build.sh
// Run:   build/bin/kiln-export-images --out images --limit 2000   (once: Fashion-MNIST as files)
//        build/bin/kiln-example-image-folder images/train [EPOCHS]    (default 2)
#include <kiln/kiln.hpp>

#include <cstdio>
#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE_FOLDER [EPOCHS]   (one subfolder per class)\n", argv[0]);
    return 2;
  }
  const int epochs = argc > 2 ? std::stoi(argv[2]) : 2;
  // kiln ends the pipeline with prefetch(AUTOTUNE) itself, as Keras does; turned off here so the
  // listing's own prefetch() is the one that runs.
  image::ImageDatasets found = image::image_dataset_from_directory(argv[1], {
      .image_size = {224, 224},
      .seed = 1,
      .validation_split = 0.2,
      .subset = image::Subset::Both,
      .prefetch = false,
  });
  auto train_ds = found.dataset.prefetch(AUTOTUNE);
  auto val_ds = found.validation->prefetch(AUTOTUNE);

  // Keras's images come as 0-255: the model rescales them itself.
  Sequential model({
      layers::Rescaling(1.0f / 255.0f, 0.0f, Shape{224, 224, 3}),
      layers::Conv2D(16, {5, 5}, {.strides = {4, 4}, .activation = Activation::ReLU}),
      layers::MaxPooling2D(4),
      layers::Flatten(),
      layers::Dense(static_cast<int64_t>(found.class_names.size()), Activation::Softmax),
  });
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.fit(train_ds, {.epochs = epochs, .verbose = 2, .validation_data = val_ds});
}
