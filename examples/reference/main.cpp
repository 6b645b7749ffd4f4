// The plain reference model (plain_model.hpp) trained on Fashion-MNIST for one epoch, beside
// kiln's Sequential starting from the same weights and drawing the same dropout masks: the same
// losses, to rounding, at very different speeds.
// Build: scripts/build.sh   Run: build/bin/kiln-reference [STEPS]   (default 938: one epoch)
#include "side_by_side.hpp"

#include <kiln/kiln.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace kiln;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 938;
  constexpr int kBatch = 64;
  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);

  auto [model, plain] = reference::side_by_side(/*seed=*/1);

  // The batches in order, unshuffled: both see the same ones.
  double kiln_seconds = 0.0, plain_seconds = 0.0, kiln_loss = 0.0, plain_loss = 0.0;
  for (int step = 0; step < steps; ++step) {
    const int64_t first = (static_cast<int64_t>(step) * kBatch) % (train.x.rows() - kBatch);
    const Tensor x = train.x.slice_rows(first, first + kBatch), y = train.y.slice_rows(first, first + kBatch);
    const std::vector<float> plain_x(x.values().begin(), x.values().end()), plain_y(y.values().begin(), y.values().end());
    auto started = std::chrono::steady_clock::now();
    kiln_loss = model.train_on_batch(x, y);
    kiln_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    started = std::chrono::steady_clock::now();
    plain_loss = plain.train_step(plain_x, plain_y, kBatch);
    plain_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if ((step + 1) % 100 == 0 || step + 1 == steps) {
      std::printf("step %4d  loss: kiln %.6f  reference %.6f\n", step + 1, kiln_loss, plain_loss);
    }
  }

  // Test accuracy of both: the share of test images whose most likely class is their label.
  const std::vector<float> test_x(test.x.values().begin(), test.x.values().end());
  const std::vector<int> plain_classes = plain.predict(test_x, static_cast<int>(test.x.rows()));
  const Tensor kiln_probabilities = model.predict(test.x);
  int plain_right = 0, kiln_right = 0;
  for (int64_t i = 0; i < test.x.rows(); ++i) {
    const float* p = kiln_probabilities.data() + i * 10;
    const auto label = static_cast<int>(test.y[i]);
    plain_right += plain_classes[static_cast<size_t>(i)] == label;
    kiln_right += std::max_element(p, p + 10) - p == label;
  }
  const auto rows = static_cast<double>(test.x.rows());
  std::printf("test accuracy: kiln %.4f  reference %.4f\n", kiln_right / rows, plain_right / rows);
  std::printf("training time: kiln %.2f s  reference %.2f s (%.0fx)\n", kiln_seconds, plain_seconds, plain_seconds / kiln_seconds);
}
