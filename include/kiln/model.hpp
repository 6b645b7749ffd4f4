// kiln/model.hpp — Sequential: a stack of layers you compile, fit, evaluate, predict and save.
//
// Intended usage, as in Keras:
//   1. Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), ...});
//   2. model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
//   3. History h = model.fit(x, y, {.batch_size = 64, .epochs = 5, .validation_split = 0.1});
//   4. model.evaluate(x_test, y_test); model.predict(x_new); model.save_weights("m.weights.npz");
// All parameters live in one contiguous arena (values and gradients side by side) that layers view
// and the optimizer updates in one loop. Everything here runs on the calling thread; the math
// inside uses the team (see parallel.hpp). While a distributed::Session of several processes is
// alive, fit and evaluate are data-parallel across them (distributed.hpp).
#pragma once

#include "kiln/callbacks.hpp"
#include "kiln/data/dataset.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/layers/layer.hpp"
#include "kiln/logs.hpp"
#include "kiln/losses.hpp"
#include "kiln/metrics.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/shared.hpp"
#include "kiln/tensor.hpp"

#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln {

// Validation data for fit: arrays in memory (batched with fit's batch_size; with sample weights,
// the validation loss and metrics are weighted) or a batched Dataset.
struct ValidationData {
  ValidationData(LabeledData arrays) : arrays(std::move(arrays)) {}                 // NOLINT: implicit on purpose
  ValidationData(data::Dataset<LabeledData> dataset) : dataset(std::move(dataset)) {}  // NOLINT: implicit on purpose
  std::optional<LabeledData> arrays;
  std::optional<data::Dataset<LabeledData>> dataset;
};

// verbose: 0 silent, 1 progress bar redrawn in place, 2 one line per epoch; kVerboseAuto picks
// 1 when standard output is a terminal and 2 otherwise, so logs stay readable.
inline constexpr int kVerboseAuto = -1;

struct FitOptions {
  int64_t batch_size = 32;
  int epochs = 1;
  int verbose = kVerboseAuto;
  std::vector<Shared<Callback>> callbacks;
  double validation_split = 0.0;  // arrays only: the last share of the samples, taken before shuffling
  std::optional<ValidationData> validation_data;
  bool shuffle = true;            // arrays only: reshuffle the training samples every epoch
  int initial_epoch = 0;
  // Datasets only: batches per epoch. 0 runs each epoch to the end of the dataset; a positive
  // count keeps one iterator across epochs (needed for a dataset that repeats forever).
  int64_t steps_per_epoch = 0;
  int validation_freq = 1;       // validate after every validation_freq-th epoch (counting from 1)
  int64_t validation_steps = 0;  // validation batches per validation; 0: all of them
  // Arrays only: one weight per sample ([n] or [n, 1]) scaling its share of the loss and metrics;
  // validation_split keeps the last samples' weights for validation. A dataset carries its
  // weights in its batches instead: from_tensor_slices(x, y, sample_weight).
  Tensor sample_weight;
  // Class index -> weight: each training sample weighs its class's weight (1 for a class not
  // listed). The class is the label, or the largest entry of a one-hot row. Not together with
  // sample weights; validation is not weighted by it.
  std::map<int64_t, float> class_weight;
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = kVerboseAuto;
  int64_t steps = 0;  // batches to evaluate; 0: all of them
  Tensor sample_weight;  // arrays only: one weight per sample, as FitOptions::sample_weight
  std::vector<Shared<Callback>> callbacks;  // their on_test_* hooks run
};

struct PredictOptions {
  int64_t batch_size = 32;
  std::vector<Shared<Callback>> callbacks;  // their on_predict_* hooks run
};

class Sequential {
 public:
  explicit Sequential(std::vector<Shared<Layer>> layers = {}, std::string name = "sequential");

  void add(Shared<Layer> layer);

  // Builds every layer for samples of this shape (no batch axis) and initialises the weights.
  // Called for you when first needed: from the first layer's declared input shape if it has
  // one, else from the data given to fit/evaluate/predict.
  void build(const Shape& input_shape);
  bool built() const { return built_; }

  void compile(Shared<Optimizer> optimizer, Shared<Loss> loss, std::vector<Shared<Metric>> metrics = {});

  // Keras's table: each layer's name, type, output shape and parameter count, then the totals.
  void summary(std::ostream& out = std::cout);

  // Training on arrays (batched and shuffled by fit) or on a Dataset of (x, y) batches. At each
  // epoch's end the logs carry "input_wait": the share of the epoch spent waiting for batches.
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  History fit(const data::Dataset<LabeledData>& batches, const FitOptions& options = {});
  Logs evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
  Logs evaluate(const data::Dataset<LabeledData>& batches, const EvaluateOptions& options = {});
  Tensor predict(const Tensor& x, const PredictOptions& options = {});
  Tensor predict(const data::Dataset<Tensor>& batches);

  // One optimisation step on one batch; returns the batch's loss. Allocates nothing once the
  // buffers have seen a batch of this size. A step whose loss or gradients are NaN or infinite
  // is not applied: ValueError, and the weights, optimizer state and metrics are as before.
  double train_on_batch(const Tensor& x, const Tensor& y);
  double train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight);

  // The forward pass alone (inference mode); the result is owned by the last layer.
  const Tensor& forward(const Tensor& x, bool training = false);

  // Weights as NumPy's .npz, one array per parameter named "<layer>/<parameter>".
  void save_weights(const std::string& path);
  void load_weights(const std::string& path);

  // The whole model as a .kiln file: architecture, compile settings, weights, optimizer state and
  // training progress (see model_file.hpp, whose load_model reads it back).
  void save(const std::string& path);

  // The weights as save_weights writes them, one array per parameter, in the arena's order.
  std::vector<io::NamedArray> weight_arrays() const;
  // Overwrites every parameter from arrays that `read` returns. `read` must call the check it is
  // given on every array's name and shape before reading any data (as io::read_npz does); any
  // array too many, too few or of the wrong shape is an error naming `source`, and then the
  // weights are as they were.
  using WeightReader = std::function<std::vector<io::NamedArray>(const io::ArrayCheck& check)>;
  void load_weight_arrays(const WeightReader& read, const std::string& source);

  // The whole parameter arena, flat (for snapshots such as EarlyStopping's best weights).
  std::vector<float> get_weights() const { return {parameter_values_.begin(), parameter_values_.end()}; }
  void set_weights(std::span<const float> weights);
  std::span<const float> parameter_values() const { return parameter_values_; }

  const std::string& name() const { return name_; }
  size_t layer_count() const { return layers_.size(); }
  Layer& layer(size_t index) { return *layers_.at(index); }
  Layer& layer(const std::string& name);
  int64_t parameter_count() const;
  Optimizer& optimizer();
  bool compiled() const { return optimizer_ && loss_; }
  Loss& loss();
  const std::vector<Shared<Metric>>& metrics() const { return metrics_; }

  // Epochs trained so far, counted as fit's epoch numbers are (so with initial_epoch): fit sets it
  // as each epoch ends, and .kiln files carry it, so a resumed run knows where to go on from.
  int epochs_completed() const { return epochs_completed_; }
  void set_epochs_completed(int epochs) { epochs_completed_ = epochs; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shapes_.back(); }
  // The output shape of one sample after layer `index` (what summary() shows), once built.
  const Shape& layer_output_shape(size_t index) const { return output_shapes_.at(index); }

  // Set by a callback to end fit() after the current epoch, as Keras's model.stop_training.
  bool stop_training = false;
  // Set by a callback's on_train_begin to start fit() at this epoch instead of its initial_epoch
  // (BackupAndRestore, after restoring a backup); fit clears it.
  std::optional<int> initial_epoch_override;

 private:
  // train_on_batch's work: `applied` is false, and nothing changed, when the loss or a gradient
  // was not finite.
  struct StepResult {
    double loss = 0.0;
    bool applied = false;
  };
  StepResult train_step(const Tensor& x, const Tensor& y, std::span<const float> sample_weight);
  // train_step in two: forward, loss, backward (the gradients left in the arena, the metrics
  // updated when they are finite), then the optimizer's update. A distributed step runs the
  // parts of the first itself, and sums the ranks' gradients before the second.
  StepResult compute_gradients(const Tensor& x, const Tensor& y, std::span<const float> sample_weight);
  void apply_gradients();
  // compute_gradients' parts: the training forward and the loss (its gradient in loss_gradient_);
  // backward from that gradient into the arena; the metrics from that forward's predictions.
  double forward_and_loss(const Tensor& x, const Tensor& y, std::span<const float> sample_weight);
  void backward_from_loss();
  void update_metrics(const Tensor& y, std::span<const float> sample_weight);
  bool gradients_finite() const;
  std::string non_finite_step_message(double loss_value) const;

  // One epoch's batches: each call gives the next, or nullptr at the end.
  using BatchSource = std::function<const LabeledData*()>;
  // Runs the validation data through evaluate_batches with fit's callbacks.
  using Validation = std::function<Logs(const std::vector<Callback*>& callbacks)>;
  // The pipeline doctor's findings on the first epoch's input (a dataset's fit), or nothing.
  using InputDiagnosis = std::function<std::optional<data::Diagnosis>()>;
  History train(const std::function<BatchSource(int epoch)>& start_epoch, int64_t steps_per_epoch, const Validation& validate,
                const FitOptions& options, const InputDiagnosis& diagnose_input = {});
  // The weights a batch's class_weight or sample weights give its samples, checked.
  std::span<const float> step_sample_weight(const LabeledData& batch, const std::map<int64_t, float>& class_weight, int64_t step);

  // A distributed fit's step (distributed.hpp, fit_distributed.cpp): one rank's view of it, what
  // the ranks agree on, then their gradients averaged, each weighted by its share (`rows` of
  // `total_rows`) of the step's samples.
  struct LocalStep {
    const LabeledData* batch = nullptr;  // nullptr: this rank's data has ended
    double loss = 0.0;
    bool finite = true;                  // the loss
    std::exception_ptr failure;          // what this rank threw getting or computing its batch
  };
  struct StepAgreement {
    bool ended = false;        // some rank's data ended: the epoch ends on all
    bool finite = true;        // every rank's loss
    bool interrupted = false;  // Ctrl-C on some rank
    int64_t rows = 0;          // the step's samples on all ranks together
    double loss = 0.0;         // the epoch's running loss and metrics over all ranks' samples
    std::vector<double> metric_results;
  };
  StepAgreement agree_on_step(const LocalStep& local, double loss_sum, int64_t samples_seen);
  // Backward from this rank's loss gradient, weighted by its share, then the ranks' gradients
  // summed: the same gradient on every rank. True when it is finite.
  bool sum_gradients_over_ranks(int64_t rows, int64_t total_rows);
  // At an epoch's end: input_wait and the non-trainable parameters averaged over the ranks.
  void average_epoch_state(Logs& logs);
  // A distributed evaluate's logs: every rank's, weighted by its samples.
  Logs average_over_ranks(double loss_sum, int64_t samples_seen);
  // Where the next batch's first sample stands in the step's whole batch (Layer::set_first_sample).
  void set_first_sample(int64_t first);
  // steps sizes the progress bar; step_limit > 0 stops after that many batches.
  Logs evaluate_batches(const BatchSource& batches, int64_t steps, int verbose, const std::vector<Callback*>& callbacks,
                        int64_t step_limit);
  Logs evaluate_dataset(const data::Dataset<LabeledData>& batches, int verbose, const std::vector<Callback*>& callbacks,
                        int64_t step_limit);
  // Which data a fit was given: some options apply to one kind only.
  enum class FitData { Arrays, Dataset };
  void check_fit_options(const FitOptions& options, FitData data) const;
  // fit's validation: validation_data (arrays or a dataset), or `rows` of the training arrays.
  Validation validation_of(const ValidationData& validation, const FitOptions& options);
  Validation validation_on_rows(const Tensor& x, const Tensor& y, const Tensor& sample_weight, std::vector<int64_t> rows,
                                const FitOptions& options);
  bool build_if_input_shape_declared();
  void build_from_data(const Tensor& x, const std::string& argument_name);
  void check_compiled(const std::string& caller) const;
  void check_pair(const Tensor& x, const Tensor& y) const;
  // sample_weight: empty, or one weight per row of x.
  // Every fit and evaluate on arrays reads its batches this way: `rows` in that order, gathered
  // into batch_. The rows must outlive the source.
  BatchSource row_batches(const Tensor& x, const Tensor& y, const Tensor& sample_weight, std::span<const int64_t> rows,
                          int64_t batch_size);
  std::span<const float> class_weights_of(const Tensor& y, const std::map<int64_t, float>& class_weight);
  void bind_parameters();
  void plan_backward();

  std::string name_;
  int epochs_completed_ = 0;
  std::vector<Shared<Layer>> layers_;
  std::vector<uint64_t> layer_seeds_;  // one per layer, drawn when the layer was added
  bool built_ = false;
  Shape input_shape_;
  std::vector<Shape> output_shapes_;
  size_t backward_stop_ = 0;  // backward runs down to this layer (see plan_backward())

  // The parameter arena: every layer's parameters and gradients, contiguous. Cache-line aligned
  // for speed and for reproducibility: a vectorised loop over data that starts unaligned peels a
  // varying number of leading elements into scalar code, whose rounding can differ from the vector
  // body's, and malloc's alignment varies from run to run.
  std::vector<float, CacheLineAllocator<float>> parameter_values_;
  std::vector<float, CacheLineAllocator<float>> parameter_gradients_;

  std::optional<Shared<Optimizer>> optimizer_;
  std::optional<Shared<Loss>> loss_;
  std::vector<Shared<Metric>> metrics_;

  // Reused buffers: a training step allocates nothing once these have their size.
  Tensor loss_gradient_;
  GradientWith loss_gradient_with_ = GradientWith::Predictions;  // what loss_gradient_ is taken against
  const Tensor* training_prediction_ = nullptr;                 // the last training forward's output
  LabeledData batch_;
  Tensor class_weights_;  // a batch's class_weight as sample weights
};

}  // namespace kiln
