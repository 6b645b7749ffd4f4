// A training loop written out by hand: what fit() does for each batch, step by step, with plain
// SGD written over the parameters. Keras's guide "Writing a training loop from scratch" does the
// same with a GradientTape; here each layer's backward() is the tape.
//
// Build: scripts/build.sh   Run: build/bin/kiln-example-training-loop [EPOCHS]   (default 3)
#include <kiln/kiln.hpp>

#include <cstdio>
#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 3;
  const float learning_rate = 0.1f;
  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);
  auto batches = data::from_tensor_slices(train.x, train.y).shuffle(10000).batch(32).prefetch(AUTOTUNE);

  set_random_seed(1);
  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
  losses::SparseCategoricalCrossentropy loss;
  Tensor loss_gradient;  // d(loss)/d(predictions), [batch, 10]

  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double loss_sum = 0.0;
    int64_t steps = 0, correct = 0, seen = 0;
    for (const LabeledData& batch : batches) {
      // 1. Forward, layer by layer, in training mode. Each layer keeps what its backward needs.
      const Tensor* activations = &batch.x;
      for (size_t i = 0; i < model.layer_count(); ++i) activations = &model.layer(i).forward(*activations, true);
      const Tensor& predictions = *activations;

      // 2. The loss, and its gradient with respect to the predictions (the probabilities).
      loss_sum += loss.compute(predictions, batch.y, &loss_gradient, GradientWith::Predictions);

      // 3. Backward, last layer first: each takes the gradient of its output, writes its
      //    parameters' gradients, and returns the gradient of its input. Flatten, before the
      //    first Dense, has nothing to learn, so the chain stops at the Dense.
      const Tensor* gradient = &loss_gradient;
      for (size_t i = model.layer_count() - 1; i >= 1; --i) gradient = &model.layer(i).backward(*gradient);

      // 4. The update: plain SGD, w -= learning_rate * dL/dw, for every parameter of every layer.
      for (size_t i = 0; i < model.layer_count(); ++i) {
        for (Parameter* parameter : model.layer(i).parameters()) {
          for (int64_t k = 0; k < parameter->size(); ++k) parameter->value[k] -= learning_rate * parameter->gradient[k];
        }
      }

      // Accuracy by hand: the most probable class against the label.
      for (int64_t r = 0; r < predictions.rows(); ++r) {
        int64_t best = 0;
        for (int64_t c = 1; c < 10; ++c) best = predictions.at(r, c) > predictions.at(r, best) ? c : best;
        correct += best == static_cast<int64_t>(batch.y[r]);
      }
      seen += predictions.rows();
      ++steps;
    }
    std::printf("epoch %d/%d - loss: %.4f - accuracy: %.4f\n", epoch, epochs, loss_sum / static_cast<double>(steps),
                static_cast<double>(correct) / static_cast<double>(seen));
  }

  // The model trained by hand is an ordinary model: evaluate it as fit's would be.
  model.compile(optimizers::SGD(learning_rate), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const Logs logs = model.evaluate(test.x, test.y, {.verbose = 0});
  std::printf("test loss: %.4f - test accuracy: %.4f\n", logs.at("loss"), logs.at("accuracy"));
}
