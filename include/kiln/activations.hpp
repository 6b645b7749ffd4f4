// kiln/activations.hpp — the element-wise activation functions and their derivatives.
//
// Dense fuses these into its own forward and backward (no extra pass over memory, no extra
// buffer); the Activation layer uses them on their own. Every derivative is written in terms of
// the activation's *output* y, which is what the layer keeps after forward.
#pragma once

#include "kiln/tensor.hpp"

#include <string>
#include <string_view>

namespace kiln {

enum class Activation { Linear, ReLU, Sigmoid, Tanh, Softmax };

std::string_view activation_name(Activation activation);  // "linear", "relu", ... as Keras spells them
Activation activation_from_name(std::string_view name);   // throws ValueError on an unknown name

// y = f(z + bias), in place: one pass over values ([batch, features]), a row at a time. bias
// (one per feature) may be null; softmax works along each row.
void activation_forward(Activation activation, MatrixMap values, const float* bias = nullptr);

// dz = f'(z) * dy, using the forward output y; dz is resized to dy's shape and may be dy itself.
// For softmax this is the Jacobian-vector product dz = y * (dy - sum(dy * y)) per row.
void activation_backward(Activation activation, const Tensor& y, const Tensor& dy, Tensor& dz);

}  // namespace kiln
