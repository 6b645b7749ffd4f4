// An image pipeline from files: read, decode, resize to 224x224 and scale to [0, 1] in one
// parallel map, augment in another, then batch and prefetch. The Python it mirrors:
//   def load_and_preprocess(path, label):
//       image = tf.io.read_file(path)
//       image = tf.image.decode_jpeg(image, channels=3)
//       image = tf.image.resize(image, [224, 224])
//       return image / 255.0, label
//   def augment(image, label):
//       image = tf.image.random_flip_left_right(image)
//       image = tf.image.random_brightness(image, 0.1)
//       image = tf.image.random_contrast(image, 0.8, 1.2)
//       return image, label
//   dataset = tf.data.Dataset.from_tensor_slices((paths, labels)).shuffle(len(paths))
//   dataset = dataset.map(load_and_preprocess, num_parallel_calls=tf.data.AUTOTUNE)
//   dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
//   dataset = dataset.batch(32).prefetch(tf.data.AUTOTUNE)
// Build: scripts/build.sh
// Run:   build/bin/kiln-export-images --out images --format jpg --limit 2000   (once: Fashion-MNIST as files)
//        build/bin/kiln-example-image-pipeline images/train [EPOCHS]          (default 2)
#include <kiln/kiln.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace kiln;

namespace {

LabeledData load_and_preprocess(const std::string& path, int64_t label) {
  const std::vector<uint8_t> bytes = image::read_file(path);
  Tensor picture = image::decode_image(bytes, {.channels = 3, .source = path});
  picture = image::resize(picture, {224, 224});
  Tensor y(Shape{});
  y.values()[0] = static_cast<float>(label);
  return {image::rescale(picture, 1.0f / 255.0f), std::move(y), Tensor()};
}

LabeledData augment(LabeledData element) {
  element.x = image::random_flip_left_right(element.x, next_seed());
  element.x = image::random_brightness(element.x, 0.1f, next_seed());
  element.x = image::random_contrast(element.x, 0.8f, 1.2f, next_seed());
  return element;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE_FOLDER [EPOCHS]   (one subfolder per class)\n", argv[0]);
    return 2;
  }
  const int epochs = argc > 2 ? std::stoi(argv[2]) : 2;
  // The files and their labels, as the Python's `paths` and `labels` lists.
  const image::ImageFiles files = image::index_directory(argv[1], {}, /*seed=*/1);
  auto paths = std::make_shared<const std::vector<std::string>>(files.file_paths);
  auto labels = std::make_shared<const std::vector<int64_t>>(files.labels);
  const auto count = static_cast<int64_t>(paths->size());

  auto dataset = data::range(count)
                     .shuffle(count)
                     .map([paths, labels](int64_t i) { return load_and_preprocess((*paths)[i], (*labels)[i]); }, AUTOTUNE)
                     .map(augment, AUTOTUNE)
                     .batch(32)
                     .prefetch(AUTOTUNE);

  // A small convnet for 224x224 colour images: a strided convolution and a pooling shrink them 16 times.
  const auto classes = static_cast<int64_t>(files.class_names.size());
  Sequential model({
      layers::Conv2D(16, {5, 5}, {.strides = {4, 4}, .activation = Activation::ReLU, .input_shape = Shape{224, 224, 3}}),
      layers::MaxPooling2D(4),
      layers::Flatten(),
      layers::Dense(classes, Activation::Softmax),
  });
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.fit(dataset, {.epochs = epochs, .verbose = 2});
}
