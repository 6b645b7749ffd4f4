// tests/distributed/test_distributed.cpp — distributed fit, checked against one process.
//
// ctest runs it twice (tests/CMakeLists.txt): first as one plain process, which trains the models
// and writes their weights; then under `mpirun -np 2`, where both ranks train the same models
// together and rank 0 compares their weights with the plain run's. A third run checks that an
// error on one rank stops both with its message, and a fourth that ranks with unequal numbers of
// batches end the epoch together. It is a plain program (not doctest): each rank must reach every
// collective call, so a check that fails reports and the run goes on to the end. Besides the
// weights, the compare mode checks the logs and evaluate's figures (averaged over the ranks, they
// must be one process's), that only rank 0 writes files, and that BatchNormalization's moving
// statistics end the same on both ranks.
//
//   test_distributed reference DIR   one process: write DIR/arrays.npz and DIR/dataset.npz
//   test_distributed compare DIR     under mpirun: train together, compare with DIR's files
//   test_distributed failure         under mpirun: rank 1's pipeline throws at its third batch
//   test_distributed uneven          under mpirun: rank 1 has fewer batches than rank 0, with and
//                                    without steps_per_epoch
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace kiln;

int failures = 0;

void check(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "rank " << distributed::rank() << ": FAILED: " << what << "\n";
  ++failures;
}

// 512 samples of 20 features in 3 classes that a small network can learn: the label is the
// largest of three fixed sums of features.
LabeledData make_data() {
  LabeledData data{Tensor(Shape{512, 20}), Tensor(Shape{512}), Tensor()};
  Rng rng(2024);
  for (int64_t r = 0; r < 512; ++r) {
    float sums[3] = {0, 0, 0};
    for (int64_t c = 0; c < 20; ++c) {
      const float value = rng.uniform(-1.0f, 1.0f);
      data.x.data()[r * 20 + c] = value;
      sums[c % 3] += value;
    }
    data.y.data()[r] = static_cast<float>(std::max_element(sums, sums + 3) - sums);
  }
  return data;
}

Sequential make_model(bool with_dropout) {
  Sequential model;
  model.add(layers::Dense(32, Activation::ReLU, 20));
  if (with_dropout) model.add(layers::Dropout(0.3f));
  model.add(layers::Dense(3, Activation::Softmax));
  model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  return model;
}

// The figures a run reports: the last epoch's logs, then evaluate's, in a fixed order.
using Figures = std::vector<double>;

// Arrays: fit shares each batch of 64 between the ranks; Dropout draws per sample of the batch.
// Each rank's CSVLogger is given its own file name, and only rank 0's may be written.
Sequential train_on_arrays(const LabeledData& data, const std::string& dir, Figures& figures) {
  set_random_seed(11);
  Sequential model = make_model(/*with_dropout=*/true);
  const callbacks::CSVLogger log(dir + "/log-rank" + std::to_string(distributed::rank()) + ".csv");
  const History history =
      model.fit(data.x, data.y, {.batch_size = 64, .epochs = 3, .verbose = 0, .callbacks = {log}, .validation_split = 0.125});
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) figures.push_back(history.history.at(key).back());
  const Logs evaluated = model.evaluate(data.x, data.y, {.batch_size = 100, .verbose = 0});
  figures.push_back(evaluated.at("loss"));
  figures.push_back(evaluated.at("accuracy"));
  return model;
}

void write_figures(const Figures& figures, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  for (double value : figures) std::fprintf(file, "%.17g\n", value);
  std::fclose(file);
}

Figures read_figures(const std::string& path) {
  Figures figures;
  std::FILE* file = std::fopen(path.c_str(), "r");
  double value = 0;
  while (file && std::fscanf(file, "%lf", &value) == 1) figures.push_back(value);
  if (file) std::fclose(file);
  return figures;
}

// A dataset: shuffled alike on every rank, then each rank's shard in batches of 64 / ranks.
Sequential train_on_dataset(const LabeledData& data) {
  set_random_seed(12);
  Sequential model = make_model(/*with_dropout=*/false);
  const int64_t ranks = distributed::size();
  auto batches = data::from_tensor_slices(data).shuffle(512).shard(ranks, distributed::rank()).batch(64 / ranks);
  model.fit(batches, {.epochs = 3, .verbose = 0});
  return model;
}

// The largest difference between two weight lists, relative to the largest weight.
double largest_difference(std::span<const float> a, std::span<const float> b) {
  double difference = 0, largest = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference = std::max(difference, std::abs(static_cast<double>(a[i]) - b[i]));
    largest = std::max(largest, std::abs(static_cast<double>(b[i])));
  }
  return difference / largest;
}

void compare(const Sequential& model, const std::string& reference_path, double tolerance, const std::string& what) {
  // Every rank must hold rank 0's weights to the bit.
  std::vector<float> mine = model.get_weights();
  std::vector<float> chief = mine;
  distributed::broadcast(chief);
  check(mine == chief, what + ": this rank's weights differ from rank 0's");
  if (!distributed::is_chief()) return;
  Sequential reference = make_model(what == "arrays");
  reference.load_weights(reference_path);
  const double difference = largest_difference(mine, reference.parameter_values());
  std::printf("%s: largest difference from one process, relative to the largest weight: %.2e\n", what.c_str(), difference);
  check(difference <= tolerance, what + ": weights differ from one process's by " + std::to_string(difference));
}

// The logs and evaluate's figures are averaged over the ranks: they must be one process's.
void compare_figures(const Figures& mine, const std::string& reference_path) {
  const Figures reference = read_figures(reference_path);
  check(reference.size() == mine.size(), "the reference figures in " + reference_path + " are incomplete");
  for (size_t i = 0; i < std::min(mine.size(), reference.size()); ++i) {
    check(std::abs(mine[i] - reference[i]) <= 1e-5 * std::max(1.0, std::abs(reference[i])),
          "figure " + std::to_string(i) + " is " + std::to_string(mine[i]) + ", one process's " + std::to_string(reference[i]));
  }
  // Every rank holds the same logs.
  std::vector<float> as_floats(mine.begin(), mine.end()), chief = as_floats;
  distributed::broadcast(chief);
  check(as_floats == chief, "this rank's logs differ from rank 0's");
}

// BatchNormalization's moving statistics follow each rank's batches during an epoch, and are
// averaged at its end: every rank must end with rank 0's model.
void check_batch_normalization_agrees(const LabeledData& data) {
  set_random_seed(13);
  Sequential model;
  model.add(layers::Dense(16, Activation::Linear, 20));
  model.add(layers::BatchNormalization());
  model.add(layers::Dense(3, Activation::Softmax));
  model.compile(optimizers::Adam(0.01f), losses::SparseCategoricalCrossentropy());
  model.fit(data.x, data.y, {.batch_size = 64, .epochs = 2, .verbose = 0});
  std::vector<float> mine = model.get_weights(), chief = mine;
  distributed::broadcast(chief);
  check(mine == chief, "with BatchNormalization, this rank's weights and moving statistics differ from rank 0's");
  const std::span<const float> moving_mean(model.layer(1).parameters()[2]->value, 16);
  check(std::any_of(moving_mean.begin(), moving_mean.end(), [](float v) { return v != 0.0f; }),
        "BatchNormalization's moving mean never moved");
}

int run_failure() {
  // Rank 1's map throws at its third element, while rank 0 trains on: both must stop.
  LabeledData data = make_data();
  Sequential model = make_model(false);
  const int rank = distributed::rank();
  auto batches = data::from_tensor_slices(data).shard(distributed::size(), rank).batch(32).map([rank](LabeledData batch) {
    static int seen = 0;
    if (rank == 1 && ++seen == 3) throw FileError("image 17.png is not an image");
    return batch;
  });
  try {
    model.fit(batches, {.epochs = 2, .verbose = 0});
  } catch (const Error& error) {
    std::printf("rank %d caught: %s\n", rank, error.what());
    return 0;
  }
  check(false, "fit returned although rank 1 failed");
  return 1;
}

int run_uneven() {
  // 9 samples in batches of 2 per rank: rank 0's shard has 5 (3 batches), rank 1's 4 (2 batches).
  LabeledData data = make_data();
  LabeledData nine{Tensor(Shape{9, 20}), Tensor(Shape{9}), Tensor()};
  std::copy(data.x.data(), data.x.data() + 9 * 20, nine.x.data());
  std::copy(data.y.data(), data.y.data() + 9, nine.y.data());
  Sequential model = make_model(false);
  int batches_run = 0;
  const callbacks::LambdaCallback count({.on_train_batch_end = [&](int64_t, const Logs&) { ++batches_run; }});
  const auto batches = data::from_tensor_slices(nine).shard(distributed::size(), distributed::rank()).batch(2);
  const History history = model.fit(batches, {.epochs = 2, .verbose = 0, .callbacks = {count}});
  check(batches_run == 4, "expected 2 steps in each of 2 epochs, got " + std::to_string(batches_run));
  check(history.history.at("loss").size() == 2, "expected 2 epochs in the history");
  std::printf("rank %d: %d steps in 2 epochs\n", distributed::rank(), batches_run);
  // With steps_per_epoch, one iteration runs on across epochs. Rank 0 has 10 batches, rank 1 only
  // 2: rank 1 runs out at the first step of epoch 2, and every rank must stop after that epoch
  // rather than wait for rank 1 in epoch 3.
  const auto unequal = data::from_tensor_slices(data).take(distributed::rank() == 0 ? 20 : 4).batch(2);
  const History on_one_iteration = model.fit(unequal, {.epochs = 4, .verbose = 0, .steps_per_epoch = 2});
  check(on_one_iteration.history.at("loss").size() == 1,
        "expected training to stop after epoch 2, in which rank 1 ran out, with 1 epoch in the history; got " +
            std::to_string(on_one_iteration.history.at("loss").size()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const std::string dir = argc > 2 ? argv[2] : "";
  try {
    if (mode == "reference" && !dir.empty()) {
      const LabeledData data = make_data();
      Figures figures;
      train_on_arrays(data, dir, figures).save_weights(dir + "/arrays.npz");
      write_figures(figures, dir + "/arrays-figures.txt");
      train_on_dataset(data).save_weights(dir + "/dataset.npz");
      std::printf("wrote the one-process weights to %s\n", dir.c_str());
      return 0;
    }
    distributed::Session session(argc, argv);
    if (distributed::size() < 2) {
      std::cerr << "run this mode under mpirun with at least 2 ranks\n";
      return 1;
    }
    if (mode == "compare" && !dir.empty()) {
      const LabeledData data = make_data();
      std::filesystem::remove(dir + "/log-rank1.csv");
      Figures figures;
      compare(train_on_arrays(data, dir, figures), dir + "/arrays.npz", 1e-5, "arrays");
      compare_figures(figures, dir + "/arrays-figures.txt");
      if (distributed::is_chief()) {
        check(std::filesystem::exists(dir + "/log-rank0.csv"), "rank 0 wrote no CSV log");
        check(!std::filesystem::exists(dir + "/log-rank1.csv"), "rank 1 wrote a CSV log: only rank 0 writes files");
      }
      compare(train_on_dataset(data), dir + "/dataset.npz", 1e-5, "dataset");
      check_batch_normalization_agrees(data);
    } else if (mode == "failure") {
      run_failure();
    } else if (mode == "uneven") {
      run_uneven();
    } else {
      std::cerr << "usage: test_distributed reference|compare DIR, or failure or uneven\n";
      return 1;
    }
    if (failures == 0) std::printf("rank %d: all checks passed\n", distributed::rank());
  } catch (const std::exception& error) {
    std::cerr << "rank " << distributed::rank() << ": error: " << error.what() << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
