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

// y = f(z), in place. values: [batch, features]; softmax works along each row.
void activation_forward(Activation activation, MatrixMap values);

// dz = f'(z) * dy, in place over dy, using the forward output y.
// For softmax this is the Jacobian-vector product dz = y * (dy - sum(dy * y)) per row.
void activation_backward(Activation activation, const Tensor& y, Tensor& dy);

}  // namespace kiln
