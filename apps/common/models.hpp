// apps/common/models.hpp — the models the apps train, chosen by --model:
//   dense  Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax (the seed's model; batch 64);
//   cnn    Keras's "simple MNIST convnet": Conv2D 32 3x3 relu, MaxPooling2D 2x2, Conv2D 64 3x3
//          relu, MaxPooling2D 2x2, Flatten, Dropout 0.5, Dense softmax (batch 128).
// Images of [height, width] get a Reshape to one channel in front of the convnet. The batch sizes
// are the ones Keras's examples use; --batch-size overrides them.
#pragma once

#include "arguments.hpp"

#include <kiln/kiln.hpp>

#include <optional>
#include <string>
#include <vector>

namespace kiln::apps {

inline void add_model_option(Arguments& arguments) {
  arguments.add_option("model", "NAME", "dense",
                       "dense (Flatten, Dense 128 relu, Dropout 0.2, Dense softmax) or cnn (Keras's MNIST convnet)");
}

inline void check_model_name(const std::string& model) {
  if (model != "dense" && model != "cnn") throw ArgumentError("--model must be dense or cnn, got '" + model + "'");
}

// The batch size a model trains with unless --batch-size says otherwise: Keras's examples' own.
inline long long default_batch_size(const std::string& model) { return model == "cnn" ? 128 : 64; }

// `rescale_bytes` puts Rescaling(1 / 255) first, for pixels decoded as 0-255 (kiln-images).
inline Sequential make_model(const std::string& model, const Shape& image_shape, int64_t classes,
                             bool rescale_bytes = false) {
  check_model_name(model);
  Sequential network;
  // The first layer declares the input shape, so the model is built as soon as it is written.
  std::optional<Shape> declared_input = image_shape;
  if (rescale_bytes) {
    network.add(layers::Rescaling(1.0f / 255.0f, 0.0f, image_shape));
    declared_input.reset();
  }
  if (model == "dense") {
    network.add(declared_input ? layers::Flatten(*declared_input) : layers::Flatten());
    network.add(layers::Dense(128, Activation::ReLU));
    network.add(layers::Dropout(0.2f));
    network.add(layers::Dense(classes, Activation::Softmax));
    return network;
  }
  if (image_shape.rank() == 2) {  // one channel, without its axis: give it one
    const std::vector<int64_t> one_channel{image_shape[0], image_shape[1], 1};
    network.add(declared_input ? layers::Reshape(one_channel, *declared_input) : layers::Reshape(one_channel));
    declared_input.reset();
  }
  network.add(layers::Conv2D(32, 3, {.activation = Activation::ReLU, .input_shape = declared_input}));
  network.add(layers::MaxPooling2D(2));
  network.add(layers::Conv2D(64, 3, {.activation = Activation::ReLU}));
  network.add(layers::MaxPooling2D(2));
  network.add(layers::Flatten());
  network.add(layers::Dropout(0.5f));
  network.add(layers::Dense(classes, Activation::Softmax));
  return network;
}

}  // namespace kiln::apps
