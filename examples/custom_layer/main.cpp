// A layer of your own: Keras's "making new layers via subclassing", in C++. The layer here,
// FeatureScale, multiplies each feature by a weight it learns, y[r, j] = x[r, j] * w[j]; the
// example checks its gradients against finite differences, as every kiln layer's tests do, then
// trains a model with it in the middle.
//
// A layer says what it needs (build, parameters), fills it (initialize), and computes forward and
// backward on whole batches. The model lays its parameters out in its arena and calls the rest.
//
// Build: scripts/build.sh   Run: build/bin/kiln-example-custom-layer [EPOCHS]   (default 2)
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace kiln;

class FeatureScale : public Layer {
 public:
  std::string type_name() const override { return "FeatureScale"; }

  // One weight per feature of a flat sample.
  Shape build(const Shape& input_shape) override {
    if (input_shape.rank() != 1) throw ShapeError(describe() + " needs flat samples, got " + input_shape.str());
    scale_.shape = input_shape;
    return input_shape;
  }
  std::vector<Parameter*> parameters() override { return {&scale_}; }
  void initialize(uint64_t /*seed*/) override { std::fill_n(scale_.value, scale_.size(), 1.0f); }

  // y[r, j] = x[r, j] * w[j]
  const Tensor& forward(const Tensor& x, bool /*training*/) override {
    input_ = &x;
    output_.resize(x.shape());
    for (int64_t r = 0; r < x.rows(); ++r) {
      for (int64_t j = 0; j < scale_.size(); ++j) output_.at(r, j) = x.at(r, j) * scale_.value[j];
    }
    return output_;
  }

  // dL/dw[j] = sum over r of dy[r, j] * x[r, j];   dL/dx[r, j] = dy[r, j] * w[j]
  const Tensor& backward(const Tensor& dy) override {
    std::fill_n(scale_.gradient, scale_.size(), 0.0f);
    input_gradient_.resize(dy.shape());
    for (int64_t r = 0; r < dy.rows(); ++r) {
      for (int64_t j = 0; j < scale_.size(); ++j) {
        scale_.gradient[j] += dy.at(r, j) * input_->at(r, j);
        input_gradient_.at(r, j) = dy.at(r, j) * scale_.value[j];
      }
    }
    return input_gradient_;
  }

 private:
  Parameter scale_{"scale", {}, nullptr, nullptr};
  const Tensor* input_ = nullptr;
  Tensor output_, input_gradient_;
};

// The gradient check: with L = sum(v * y) for fixed v, dL/dy = v; compare backward's dL/dw and
// dL/dx with central differences (L(w + e) - L(w - e)) / 2e. Returns the largest difference.
double largest_gradient_error(FeatureScale& layer, Tensor x) {
  std::vector<float> weights(4), gradients(4);
  Parameter& scale = *layer.parameters()[0];
  layer.build(Shape{4});
  scale.value = weights.data();
  scale.gradient = gradients.data();
  for (int j = 0; j < 4; ++j) weights[j] = 0.5f + 0.25f * static_cast<float>(j);
  Tensor v(x.shape());
  for (int64_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i));
  const auto loss = [&] {
    const Tensor& y = layer.forward(x, true);
    double total = 0.0;
    for (int64_t i = 0; i < y.size(); ++i) total += static_cast<double>(v[i]) * y[i];
    return total;
  };
  loss();
  const Tensor dx = layer.backward(v);  // a copy: the next forward reuses the layer's buffers
  const std::vector<float> dw = gradients;
  const auto numeric = [&](float& value) {
    const float saved = value, e = 1e-2f;
    value = saved + e;
    const double up = loss();
    value = saved - e;
    const double down = loss();
    value = saved;
    return (up - down) / (2.0 * e);
  };
  double largest = 0.0;
  for (int j = 0; j < 4; ++j) largest = std::max(largest, std::abs(numeric(weights[j]) - dw[j]));
  for (int64_t i = 0; i < x.size(); ++i) largest = std::max(largest, std::abs(numeric(x[i]) - dx[i]));
  return largest;
}

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 2;

  FeatureScale checked;
  Tensor x(Shape{3, 4});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i)) * 2.0f;
  const double error = largest_gradient_error(checked, x);
  std::printf("gradient check: largest difference from finite differences %.2e (%s)\n", error,
              error < 1e-3 ? "ok" : "WRONG");
  if (error >= 1e-3) return 1;

  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);
  auto batches = data::from_tensor_slices(train.x, train.y).shuffle(10000).batch(64).prefetch(AUTOTUNE);
  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), FeatureScale(),
                    layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.summary();
  model.fit(batches, {.epochs = epochs, .verbose = 2});
  // Its weights save and load like any layer's, as "feature_scale/scale".
  const Logs logs = model.evaluate(test.x, test.y, {.verbose = 0});
  std::printf("test accuracy: %.4f\n", logs.at("accuracy"));
}
