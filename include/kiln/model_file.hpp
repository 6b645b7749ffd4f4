// kiln/model_file.hpp — whole-model files: model.save("m.kiln"), load_model("m.kiln").
//
// A .kiln file is a zip archive (unzip -l lists it) of four entries:
//   config.json         the architecture and compile settings in Keras's terms: {"class_name":
//                       "Sequential", "config": {"name", "layers": [{"class_name": "Dense",
//                       "config": {"units": 128, "activation": "relu", ...}}, ...]},
//                       "build_config": {"input_shape": [null, 28, 28]}, "compile_config": ...}
//   metadata.json       the format's name and version, the epochs trained, the optimizer's step
//                       count and each layer's random state (Dropout's seed and position)
//   model.weights.npz   the weights, exactly as save_weights writes them ("dense/kernel")
//   optimizer.npz       the optimizer's slots per parameter ("momentum/dense/kernel")
// so a loaded model predicts as the saved one did and, trained on, takes the same steps. The
// file is written through an AtomicFile: a failed or killed save leaves the previous file whole.
#pragma once

#include "kiln/model.hpp"

#include <string>

namespace kiln {

// Builds the model a .kiln file describes, compiled as it was (if it was), with its weights,
// optimizer state and epoch count. A file that is truncated, damaged or not kiln's is a FileError
// saying what is wrong with it.
Sequential load_model(const std::string& path);

// Puts a .kiln file's weights, optimizer state, layers' random states and epoch count into
// `model`, which must have the same layers (classes, names and weight shapes) and, if the file's
// model was compiled, an optimizer of the same class: how a training run resumes. Everything is
// read and checked before anything is changed, so after an error the model is as it was.
void restore_model(Sequential& model, const std::string& path);

}  // namespace kiln
