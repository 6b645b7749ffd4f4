// examples/reference/side_by_side.hpp — kiln's reference model and its plain twin, ready to train
// side by side: the same starting weights and the same dropout seed and step.
#pragma once

#include "plain_model.hpp"

#include <kiln/kiln.hpp>

#include <map>
#include <string>
#include <vector>

namespace reference {

struct SideBySide {
  kiln::Sequential model;  // Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax; Adam, sparse cross-entropy
  PlainModel plain;        // the same, as plain loops, starting where `model` does
};

// Both models, kiln's weights drawn from `seed`.
inline SideBySide side_by_side(uint64_t seed) {
  using namespace kiln;
  set_random_seed(seed);
  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dropout(0.2f),
                    layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(1e-3f), losses::SparseCategoricalCrossentropy());
  model.build(Shape{28, 28});
  // The arrays come in the arena's order: dense/kernel, dense/bias, dense_1/kernel, dense_1/bias.
  const std::vector<io::NamedArray> start = model.weight_arrays();
  const std::map<std::string, uint64_t> dropout = model.layer(2).random_state();
  PlainModel plain(start[0].values, start[1].values, start[2].values, start[3].values, 0.2f, dropout.at("seed"), dropout.at("step"));
  return {std::move(model), std::move(plain)};
}

}  // namespace reference
