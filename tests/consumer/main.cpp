// Trains a tiny model through kiln's public headers: proves a consumer builds, links and runs.
#include <kiln/kiln.hpp>

#include <cstdio>

int main() {
  using namespace kiln;
  set_random_seed(7);
  // y = 1 when x0 + x1 > 1: a problem a single sigmoid unit learns.
  Tensor x(Shape{64, 2}), y(Shape{64, 1});
  Rng rng(3);
  for (int64_t i = 0; i < 64; ++i) {
    x.at(i, 0) = rng.uniform(0, 1);
    x.at(i, 1) = rng.uniform(0, 1);
    y[i] = x.at(i, 0) + x.at(i, 1) > 1.0f ? 1.0f : 0.0f;
  }
  Sequential model({layers::Dense(1, Activation::Sigmoid, /*input_dim=*/2)});
  model.compile(optimizers::Adam(0.1f), losses::BinaryCrossentropy(), {metrics::Accuracy()});
  model.fit(x, y, {.batch_size = 16, .epochs = 60, .verbose = 0});
  const double accuracy = model.evaluate(x, y, {.verbose = 0}).at("accuracy");
  std::printf("consumer accuracy %.3f\n", accuracy);
  return accuracy > 0.9 ? 0 : 1;
}
