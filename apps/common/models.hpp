// apps/common/models.hpp — the models the apps train, chosen by --model:
//   dense  Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax (the seed's model; batch 64);
//   cnn    Keras's "simple MNIST convnet": Conv2D 32 3x3 relu, MaxPooling2D 2x2, Conv2D 64 3x3
//          relu, MaxPooling2D 2x2, Flatten, Dropout 0.5, Dense softmax (batch 128).
// Images of [height, width] get a Reshape to one channel in front of the convnet.
#pragma once

#include "arguments.hpp"

#include <kiln/kiln.hpp>

#include <optional>
#include <string>

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

inline Sequential make_model(const std::string& model, const Shape& image_shape, int64_t classes) {
  if (model == "dense") {
    return Sequential({
        layers::Flatten(image_shape),
        layers::Dense(128, Activation::ReLU),
        layers::Dropout(0.2f),
        layers::Dense(classes, Activation::Softmax),
    });
  }
  if (model == "cnn") {
    Sequential convnet;
    std::optional<Shape> declared_input;  // the first layer's, so the model is built at once
    if (image_shape.rank() == 2) {
      convnet.add(layers::Reshape({image_shape[0], image_shape[1], 1}, image_shape));
    } else {
      declared_input = image_shape;
    }
    convnet.add(layers::Conv2D(32, 3, {.activation = Activation::ReLU, .input_shape = declared_input}));
    convnet.add(layers::MaxPooling2D(2));
    convnet.add(layers::Conv2D(64, 3, {.activation = Activation::ReLU}));
    convnet.add(layers::MaxPooling2D(2));
    convnet.add(layers::Flatten());
    convnet.add(layers::Dropout(0.5f));
    convnet.add(layers::Dense(classes, Activation::Softmax));
    return convnet;
  }
  check_model_name(model);
  throw ArgumentError("--model " + model + " has no builder");
}

}  // namespace kiln::apps
