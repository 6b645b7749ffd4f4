// kiln/layers/layer.hpp — the interface every layer implements, and its parameters.
//
// Life of a layer: the model calls build() once with one sample's input shape; the layer says
// which parameters it needs (shapes only); the model binds them to views into its one parameter
// arena and calls initialize(); then forward() and backward() run once per batch on the training
// thread. A layer owns its output and input-gradient buffers and reuses them every step.
#pragma once

#include "kiln/activations.hpp"
#include "kiln/tensor.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

// A trainable variable: its shape, and views into the model's arena for its values and gradient.
//
// A non-trainable variable (BatchNormalization's moving statistics) is one the layer updates
// itself. It lives in the arena like the others, so it is saved, loaded and restored with them,
// and its gradient stays zero: every kiln optimizer's update of a variable whose gradient has
// always been zero is exactly zero (Adam's moments and SGD's velocity stay 0), so the step over
// the whole arena leaves it as the layer wrote it.
struct Parameter {
  std::string name;  // "kernel", "bias"
  Shape shape;
  float* value = nullptr;
  float* gradient = nullptr;
  bool trainable = true;
  int64_t size() const { return shape.element_count(); }
};

class Layer {
 public:
  virtual ~Layer() = default;

  // The class name shown by summary(): "Dense", "Dropout".
  virtual std::string type_name() const = 0;

  // The layer's name ("dense", "dense_1"): summary() shows it and weight files use it.
  // Empty until the model names it, unless the user set one.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // The input shape (without the batch axis) given at construction, if any.
  const std::optional<Shape>& declared_input_shape() const { return declared_input_shape_; }

  // Checks the input shape of one sample and fixes the output shape. Called once.
  // Throws ShapeError naming the layer when the input does not fit.
  virtual Shape build(const Shape& input_shape) = 0;

  // The parameters this layer needs, valid after build(); the model points them into its arena.
  virtual std::vector<Parameter*> parameters() { return {}; }
  int64_t parameter_count();

  // Fills the (bound) parameters with their initial values.
  virtual void initialize(uint64_t /*seed*/) {}

  // What a resumed run needs besides the weights: a random stream's seed and position, by name.
  // .kiln files save it, so training that goes on from one draws what it would have drawn.
  virtual std::map<std::string, uint64_t> random_state() const { return {}; }
  virtual void set_random_state(const std::map<std::string, uint64_t>& /*state*/) {}

  // Where the next batch's first sample stands in the step's whole batch, when several processes
  // share a step (distributed.hpp); 0 otherwise. A layer that draws per sample (Dropout) draws
  // for each sample what one process training the whole batch would.
  virtual void set_first_sample(int64_t /*first*/) {}

  // x: [batch, input_shape...] -> [batch, output_shape...]. The returned tensor is owned by the
  // layer (or is x itself) and stays valid until the next forward().
  virtual const Tensor& forward(const Tensor& x, bool training) = 0;

  // dy: gradient of the loss w.r.t. this layer's last output. Writes the parameters' gradients
  // (overwriting, not accumulating) and returns the gradient w.r.t. the layer's last input.
  virtual const Tensor& backward(const Tensor& dy) = 0;

  // Layers that end in an activation say which, so a loss can fuse its gradient with it
  // (softmax + cross-entropy gives the exact, stable (p - y) / n) ...
  virtual Activation output_activation() const { return Activation::Linear; }
  // ... and then hand the gradient w.r.t. the activation's input straight to this.
  virtual const Tensor& backward_from_preactivation(const Tensor& dz);

  // False for the model's layers up to its first layer with parameters: nothing before them
  // learns, so their input gradient would go nowhere (for a Dense, skipping it saves a GEMM).
  void set_input_gradient_needed(bool needed) { input_gradient_needed_ = needed; }
  bool input_gradient_needed() const { return input_gradient_needed_; }

 protected:
  explicit Layer(std::optional<Shape> declared_input_shape = std::nullopt)
      : declared_input_shape_(std::move(declared_input_shape)) {}

  // "Dense 'dense_1'": how error messages name this layer.
  std::string describe() const;

 private:
  std::string name_;
  std::optional<Shape> declared_input_shape_;
  bool input_gradient_needed_ = true;
};

// sums[j] = sum over r of rows[r * columns + j]: a bias gradient, the column sums of dz. Added a
// row at a time, so the inner loop runs along memory and vectorises. (Eigen's colwise().sum()
// walks a row-major matrix column by column: 16x slower for a 256x1024 dz.) A large sum with
// few columns (a convolution's dz: 86,528 rows of 32) is cut into a fixed number of row slices
// summed on the team, then added in order: the same bits whatever the thread count.
void sum_over_rows(const float* rows, int64_t row_count, int64_t columns, float* sums);

}  // namespace kiln
