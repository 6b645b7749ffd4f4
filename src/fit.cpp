// Sequential's training loop: fit on arrays or datasets, evaluate and predict.
//
// Both fits reduce to one epoch loop (train()) over a BatchSource, a function that hands out the
// epoch's batches one by one; the time spent inside it is the epoch's input wait. Arrays become
// batches in one place (row_batches: a list of rows, gathered batch by batch), validation data of
// either kind is set up in one place (validation_of), and the options are checked in one place
// (check_fit_options, told which kind of data it is). How the ranks of a distributed fit agree on
// each step is in fit_distributed.cpp.
#include "kiln/model.hpp"

#include "kiln/denormals.hpp"
#include "kiln/distributed.hpp"
#include "kiln/error.hpp"
#include "kiln/interrupt.hpp"
#include "kiln/progress_bar.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <iostream>
#include <numeric>

namespace kiln {
namespace {

// begin, begin + 1, ..., end - 1: the rows of arrays in their own order.
std::vector<int64_t> row_numbers(int64_t begin, int64_t end) {
  std::vector<int64_t> rows(static_cast<size_t>(std::max<int64_t>(0, end - begin)));
  std::iota(rows.begin(), rows.end(), begin);
  return rows;
}

int resolve_verbose(int verbose) {
  if (!distributed::is_chief()) return 0;  // one progress bar for a distributed fit: rank 0's
  if (verbose != kVerboseAuto) return verbose;
  return ProgressBar::stream_is_terminal(std::cout) ? 1 : 2;
}

}  // namespace

// ---- fit -----------------------------------------------------------------------------------------

void Sequential::check_fit_options(const FitOptions& options, FitData data) const {
  if (data == FitData::Arrays && options.steps_per_epoch > 0) {
    throw ValueError("steps_per_epoch applies to datasets; with arrays every epoch is one pass");
  }
  if (data == FitData::Dataset && options.validation_split > 0.0) {
    throw ValueError("validation_split needs arrays; with a dataset, pass validation_data (for example dataset.take(k))");
  }
  if (data == FitData::Dataset && !options.sample_weight.empty()) {
    throw ValueError("sample_weight applies to arrays; a dataset carries its weights in its batches: "
                     "from_tensor_slices(x, y, sample_weight)");
  }
  if (options.epochs < 0) throw ValueError("epochs must be at least 0, got " + std::to_string(options.epochs));
  if (options.initial_epoch < 0) {
    throw ValueError("initial_epoch must be at least 0, got " + std::to_string(options.initial_epoch));
  }
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  if (!(options.validation_split >= 0.0 && options.validation_split < 1.0)) {
    throw ValueError("validation_split must be in [0, 1), got " + std::to_string(options.validation_split));
  }
  if (options.validation_split > 0.0 && options.validation_data) {
    throw ValueError("give either validation_split or validation_data, not both");
  }
  if (options.validation_freq < 1) {
    throw ValueError("validation_freq must be at least 1 (validate every that many epochs), got " +
                     std::to_string(options.validation_freq));
  }
  if (options.validation_steps < 0) {
    throw ValueError("validation_steps must be at least 0 (0: all the validation data), got " + std::to_string(options.validation_steps));
  }
  if (options.steps_per_epoch < 0) {
    throw ValueError("steps_per_epoch must be positive (or 0 for a whole pass), got " + std::to_string(options.steps_per_epoch));
  }
  if (!options.class_weight.empty() && !options.sample_weight.empty()) {
    throw ValueError("give either class_weight or sample_weight, not both (fold the class weights into the sample weights)");
  }
  for (const auto& [label, weight] : options.class_weight) {
    if (label < 0 || !std::isfinite(weight)) {
      throw ValueError("class_weight: class " + std::to_string(label) + " has weight " + std::to_string(weight) +
                       "; classes are indices from 0 and weights finite numbers");
    }
  }
}

// The batches of `rows` of (x, y, sample_weight), in that order, each gathered into batch_.
Sequential::BatchSource Sequential::row_batches(const Tensor& x, const Tensor& y, const Tensor& sample_weight,
                                                std::span<const int64_t> rows, int64_t batch_size) {
  return [this, &x, &y, &sample_weight, rows, batch_size, begin = size_t{0}]() mutable -> const LabeledData* {
    if (begin >= rows.size()) return nullptr;
    std::span<const int64_t> batch = rows.subspan(begin, std::min(static_cast<size_t>(batch_size), rows.size() - begin));
    begin += batch.size();
    if (distributed::active()) {
      // A distributed fit's batch is the step's whole batch: this rank takes its share, the
      // ranks' shares in rank order making up the batch (a share may be empty).
      const size_t ranks = static_cast<size_t>(distributed::size()), rank = static_cast<size_t>(distributed::rank());
      const size_t share_begin = batch.size() * rank / ranks, share_end = batch.size() * (rank + 1) / ranks;
      set_first_sample(static_cast<int64_t>(share_begin));
      batch = batch.subspan(share_begin, share_end - share_begin);
    }
    data::gather_rows(x, batch, batch_.x);
    data::gather_rows(y, batch, batch_.y);
    if (sample_weight.empty()) {
      batch_.sample_weight.resize(Shape{0});
    } else {
      data::gather_rows(sample_weight, batch, batch_.sample_weight);
    }
    return &batch_;
  };
}

// Validation on `rows` of arrays, batched as fit batches its training data.
Sequential::Validation Sequential::validation_on_rows(const Tensor& x, const Tensor& y, const Tensor& sample_weight,
                                                      std::vector<int64_t> rows, const FitOptions& options) {
  return [this, &x, &y, &sample_weight, rows = std::move(rows), batch_size = options.batch_size,
          steps = options.validation_steps](const std::vector<Callback*>& callbacks) {
    return evaluate_batches(row_batches(x, y, sample_weight, rows, batch_size), 0, 0, callbacks, steps);
  };
}

// fit's validation_data, arrays or a dataset, checked as the training data is.
Sequential::Validation Sequential::validation_of(const ValidationData& validation, const FitOptions& options) {
  if (validation.dataset) {
    return [this, dataset = *validation.dataset, steps = options.validation_steps](const std::vector<Callback*>& callbacks) {
      return evaluate_dataset(dataset, 0, callbacks, steps);
    };
  }
  const LabeledData& arrays = *validation.arrays;
  check_pair(arrays.x, arrays.y);
  data::check_sample_weight(arrays.sample_weight, arrays.x.rows(), "validation_data");
  build_from_data(arrays.x, "validation_data.x");
  (*loss_)->check_targets(output_shape().with_batch(arrays.y.rows()), arrays.y);
  return validation_on_rows(arrays.x, arrays.y, arrays.sample_weight, row_numbers(0, arrays.x.rows()), options);
}

// Keras's class_weight as one weight per row of y: the weight of the row's class (its label, or
// the largest entry of a one-hot row), 1 for a class the map does not list.
std::span<const float> Sequential::class_weights_of(const Tensor& y, const std::map<int64_t, float>& class_weight) {
  class_weights_.resize(Shape{y.rows()});
  const int64_t columns = y.row_size();
  for (int64_t r = 0; r < y.rows(); ++r) {
    const float* row = y.data() + r * columns;
    const int64_t label =
        columns == 1 ? static_cast<int64_t>(std::lround(row[0])) : static_cast<int64_t>(std::max_element(row, row + columns) - row);
    const auto found = class_weight.find(label);
    class_weights_[r] = found == class_weight.end() ? 1.0f : found->second;
  }
  return class_weights_.values();
}

History Sequential::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  check_compiled("fit");
  check_pair(x, y);
  build_from_data(x, "x");
  check_fit_options(options, FitData::Arrays);
  data::check_sample_weight(options.sample_weight, x.rows(), "fit");
  // Checked once over all the data, so an error names the sample's row in y, not in a batch.
  (*loss_)->check_targets(output_shape().with_batch(y.rows()), y);
  Validation validate = options.validation_data ? validation_of(*options.validation_data, options) : Validation();

  // Keras's rule: the validation split is the *last* share of the samples, before any shuffling.
  const int64_t sample_count = x.rows();
  const auto train_count = static_cast<int64_t>(static_cast<double>(sample_count) * (1.0 - options.validation_split));
  if (train_count == 0) throw ValueError("no training samples left after validation_split");
  if (options.validation_split > 0.0) {
    if (train_count == sample_count) {
      throw ValueError("validation_split " + std::to_string(options.validation_split) + " of " +
                       std::to_string(sample_count) + " samples leaves no validation samples");
    }
    validate = validation_on_rows(x, y, options.sample_weight, row_numbers(train_count, sample_count), options);
  }

  // Each epoch visits the training rows in a new order (Fisher-Yates, from fit's own generator,
  // so a seed reproduces it), batch by batch.
  std::vector<int64_t> order = row_numbers(0, train_count);
  Rng shuffle_rng(next_seed());
  int shuffled_epochs = 0;
  auto start_epoch = [&](int epoch) -> BatchSource {
    // Epoch k's order is the (k+1)th shuffle, however many epochs this fit skipped: a run resumed
    // from a checkpoint of epoch k visits the rows in the order the uninterrupted run did.
    while (options.shuffle && shuffled_epochs <= epoch) {
      for (int64_t i = train_count - 1; i > 0; --i) std::swap(order[i], order[shuffle_rng.below(i + 1)]);
      ++shuffled_epochs;
    }
    return row_batches(x, y, options.sample_weight, order, options.batch_size);
  };
  return train(start_epoch, (train_count + options.batch_size - 1) / options.batch_size, validate, options);
}

History Sequential::fit(const data::Dataset<LabeledData>& batches, const FitOptions& options) {
  check_compiled("fit");
  check_fit_options(options, FitData::Dataset);
  const int64_t cardinality = batches.cardinality();
  if (cardinality == data::kInfiniteCardinality && options.steps_per_epoch == 0) {
    throw ValueError("the training dataset repeats forever: give fit a steps_per_epoch");
  }
  // Without steps_per_epoch every epoch is a fresh pass (a new iteration: shuffles reshuffle);
  // with it, one iteration runs on across epochs, as in Keras.
  std::shared_ptr<data::Iteration<LabeledData>> iteration;
  std::optional<LabeledData> current;
  std::optional<data::Diagnosis> first_epoch_diagnosis;  // taken before the first epoch's pipeline stops
  const int64_t steps_per_epoch = options.steps_per_epoch;
  bool ran_out = false;
  auto start_epoch = [&](int epoch) -> BatchSource {
    if (steps_per_epoch == 0) {
      iteration.reset();  // the previous epoch's threads stop before the next epoch's start
      // Told the epoch, the pipeline's shuffles order it as they did epoch `epoch` of a run from 0.
      iteration = std::make_shared<data::Iteration<LabeledData>>(batches.node(), static_cast<uint64_t>(epoch));
    } else if (!iteration) {
      // One iteration runs on across epochs. A fit that starts at epoch k (resumed from a
      // checkpoint) first reads, without training, the k * steps_per_epoch batches that epochs
      // 0 to k - 1 took, so it trains on the batches an uninterrupted run would have.
      iteration = std::make_shared<data::Iteration<LabeledData>>(batches.node());
      for (int64_t skipped = 0; skipped < int64_t{epoch} * steps_per_epoch; ++skipped) {
        if (!iteration->next()) {
          iteration.reset();  // ran out: the epoch's first batch says so
          break;
        }
      }
    }
    return [&, taken = int64_t{0}]() mutable -> const LabeledData* {
      if (steps_per_epoch > 0 && taken == steps_per_epoch) return nullptr;
      current = iteration ? iteration->next() : std::nullopt;
      if (!current) {
        if (iteration && !first_epoch_diagnosis) first_epoch_diagnosis = data::diagnose(*iteration);
        if (steps_per_epoch > 0 && !ran_out) {
          ran_out = true;
          std::cerr << "Warning: your input ran out of data; interrupting training. Make sure that your dataset can "
                       "generate at least steps_per_epoch * epochs batches (use .repeat()).\n";
          stop_training = true;
        }
        iteration.reset();
        return nullptr;
      }
      ++taken;
      // Each rank's batches are its own samples: its dropout masks must not repeat another's.
      if (distributed::active()) set_first_sample(distributed::rank() * current->x.rows());
      return &*current;
    };
  };
  const Validation validate = options.validation_data ? validation_of(*options.validation_data, options) : Validation();
  const int64_t steps = steps_per_epoch > 0 ? steps_per_epoch : (cardinality >= 0 ? cardinality : 0);
  // With steps_per_epoch the iteration runs on past the first epoch: its figures so far.
  auto diagnose_input = [&]() -> std::optional<data::Diagnosis> {
    if (!first_epoch_diagnosis && iteration) first_epoch_diagnosis = data::diagnose(*iteration);
    return first_epoch_diagnosis;
  };
  return train(start_epoch, steps, validate, options, diagnose_input);
}

// ---- the epoch loop ------------------------------------------------------------------------------

std::span<const float> Sequential::step_sample_weight(const LabeledData& batch, const std::map<int64_t, float>& class_weight,
                                                      int64_t step) {
  if (!data::sample_weight_fits(batch.sample_weight, batch.x.rows())) {
    data::check_sample_weight(batch.sample_weight, batch.x.rows(), "fit: batch " + std::to_string(step + 1));
  }
  if (class_weight.empty()) return batch.sample_weight.values();
  if (!batch.sample_weight.empty()) {
    throw ValueError("fit: the dataset's batches carry sample weights, so class_weight cannot be given too "
                     "(fold the class weights into the sample weights)");
  }
  return class_weights_of(batch.y, class_weight);
}

// The epoch loop both fits share. steps_per_epoch 0 means "unknown" (the progress bar says so).
//
// Distributed (distributed::active()), every rank runs this loop in step: each runs the forward
// pass and the loss on its own batch, the ranks agree on the step (agree_on_step: did every rank
// get a batch, did any fail), then each runs backward and the ranks sum their gradients
// (sum_gradients_over_ranks), and every rank applies the same update. An error on some
// ranks during a step ends the step on all of them with its message; an error elsewhere on one
// rank ends every rank through distributed::abort_all, since the others would wait for it forever.
History Sequential::train(const std::function<BatchSource(int epoch)>& start_epoch, int64_t steps_per_epoch,
                          const Validation& validate, const FitOptions& options, const InputDiagnosis& diagnose_input) {
  const int verbose = resolve_verbose(options.verbose);
  const bool together = distributed::active();
  // One scope for the whole run: callbacks and dataset functions on this thread compute in it too.
  const DenormalsFlushedToZero flush_denormals;
  const BatchScheduling batch_scheduling;  // parallel.hpp: waking up for a batch never preempts its producer
  const StopOnInterrupt stop_on_interrupt;  // Ctrl-C: stop after this batch (interrupt.hpp)
  History history;
  callbacks::ProgbarLogger progress_bar(std::cout);
  std::vector<Callback*> callbacks;
  for (const Shared<Callback>& callback : options.callbacks) callbacks.push_back(callback.get());
  if (verbose > 0) callbacks.push_back(&progress_bar);
  callbacks.push_back(&history);
  for (Callback* callback : callbacks) {
    callback->set_model(this);
    callback->set_params({options.epochs, steps_per_epoch, verbose});
  }
  // Every rank starts from rank 0's weights, whatever each built or loaded.
  if (together) distributed::broadcast(parameter_values_);

  bool error_is_agreed = false;  // thrown on every rank alike, so no rank is left waiting
  try {
    stop_training = false;
    Logs logs;
    for (Callback* callback : callbacks) callback->on_train_begin(logs);
    // A callback that restored a backup (BackupAndRestore) moves the start, as Keras's does.
    const int first_epoch = initial_epoch_override.value_or(options.initial_epoch);
    initial_epoch_override.reset();
    for (int epoch = first_epoch; epoch < options.epochs && !stop_training; ++epoch) {
      logs.clear();
      for (Callback* callback : callbacks) callback->on_epoch_begin(epoch, logs);
      for (Shared<Metric>& metric : metrics_) metric->reset();
      const auto epoch_start = std::chrono::steady_clock::now();
      std::chrono::duration<double> input_wait{0};
      BatchSource next_batch = start_epoch(epoch);
      double loss_sum = 0.0;
      int64_t samples_seen = 0, batches_seen = 0;
      bool interrupted = false;
      for (int64_t step = 0;; ++step) {
        LocalStep local;
        try {
          // The time spent getting a batch is time the model was not training: if it is a large share
          // of the epoch, training is input-bound (prefetch, or a faster pipeline, would help).
          const auto wait_start = std::chrono::steady_clock::now();
          local.batch = next_batch();
          input_wait += std::chrono::steady_clock::now() - wait_start;
          if (local.batch) {
            for (Callback* callback : callbacks) callback->on_train_batch_begin(step, logs);
            const std::span<const float> sample_weight = step_sample_weight(*local.batch, options.class_weight, step);
            if (local.batch->x.rows() > 0 && together) {  // a rank's share of a short last batch may be empty
              // The forward pass and the loss; backward waits for the ranks' agreement on the step.
              local.loss = forward_and_loss(local.batch->x, local.batch->y, sample_weight);
              local.finite = std::isfinite(local.loss);
              if (local.finite) update_metrics(local.batch->y, sample_weight);
            } else if (local.batch->x.rows() > 0) {
              const StepResult result = compute_gradients(local.batch->x, local.batch->y, sample_weight);
              local.loss = result.loss;
              local.finite = result.applied;
            }
          }
        } catch (...) {
          if (!together) throw;
          local.failure = std::current_exception();
        }
        const int64_t rows = local.batch && !local.failure ? local.batch->x.rows() : 0;
        if (local.finite) {
          // Keras shows running means over the epoch so far, each batch weighted by its size.
          loss_sum += local.loss * static_cast<double>(rows);
          samples_seen += rows;
        }
        std::optional<StepAgreement> agreement;
        if (together) {
          error_is_agreed = true;
          agreement = agree_on_step(local, loss_sum, samples_seen);
          error_is_agreed = false;
          if (agreement->ended) break;  // a rank ran out of batches: the epoch ends on every rank
        } else if (!local.batch) {
          break;
        }
        ++batches_seen;
        // Distributed, the gradients are computed and summed over the ranks here, once every rank
        // has a finite loss; the sum is the same everywhere, so is the verdict on it.
        const bool finite = together ? agreement->finite && sum_gradients_over_ranks(rows, agreement->rows) : local.finite;
        if (!finite) {
          // The step was not applied. A callback such as TerminateOnNaN may end training here, as
          // Keras lets it; otherwise the caller hears of it.
          const double loss = together ? agreement->loss : local.loss;
          logs["loss"] = std::isfinite(loss) ? NAN : loss;
          for (Callback* callback : callbacks) callback->on_train_batch_end(step, logs);
          if (!stop_training) {
            error_is_agreed = true;
            throw ValueError("at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) + ", " +
                             non_finite_step_message(loss));
          }
          break;
        }
        apply_gradients();
        if (together) {
          logs["loss"] = agreement->loss;
          for (size_t i = 0; i < metrics_.size(); ++i) logs[metrics_[i]->name()] = agreement->metric_results[i];
        } else {
          logs["loss"] = loss_sum / static_cast<double>(samples_seen);
          for (Shared<Metric>& metric : metrics_) logs[metric->name()] = metric->result();
        }
        for (Callback* callback : callbacks) callback->on_train_batch_end(step, logs);
        interrupted = together ? agreement->interrupted : StopOnInterrupt::requested();
        if (interrupted) break;
      }
      if (interrupted) {
        // The epoch is not finished, so it is not ended: History keeps the whole epochs only.
        if (distributed::is_chief()) {
          std::cerr << "\nInterrupted: training stopped after batch " << batches_seen << " of epoch " << epoch + 1
                    << " (press Ctrl-C again to abort at once)\n";
        }
        stop_training = true;
        break;
      }
      if (batches_seen == 0 && epoch == first_epoch) {
        // Keras refuses this too: no step ran, so there are no logs, and a model that "trained"
        // on nothing would be a silent mistake (an empty folder, a filter that keeps nothing).
        error_is_agreed = true;  // distributed, batches_seen is agreed
        throw ValueError("fit: the training data gave no batches in the first epoch; is the dataset empty?");
      }
      const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      logs["input_wait"] = epoch_seconds > 0 ? input_wait.count() / epoch_seconds : 0.0;
      if (together) average_epoch_state(logs);
      // Keras validates every validation_freq-th epoch, counting from 1, with fit's callbacks'
      // on_test_* hooks.
      if (validate && (epoch + 1) % options.validation_freq == 0) {
        for (const auto& [metric_name, value] : validate(callbacks)) logs["val_" + metric_name] = value;
      }
      epochs_completed_ = epoch + 1;  // before the callbacks, so a checkpoint they write records it
      for (Callback* callback : callbacks) callback->on_epoch_end(epoch, logs);
      // A rank whose data ran out (steps_per_epoch) stops training: then every rank does.
      if (together) stop_training = distributed::any_rank(stop_training);
      // The pipeline doctor speaks once, after the first epoch, and only when it has something to say.
      if (verbose > 0 && epoch == first_epoch && diagnose_input) {
        if (std::optional<data::Diagnosis> diagnosis = diagnose_input();
            diagnosis && (!diagnosis->advice.empty() || !diagnosis->notes.empty())) {
          std::cout << diagnosis->one_line() << '\n';
          for (const std::string& note : diagnosis->notes) std::cout << "pipeline note: " << note << '\n';
        }
      }
    }
    for (Callback* callback : callbacks) callback->on_train_end(logs);
  } catch (...) {
    for (Callback* callback : callbacks) callback->set_model(nullptr);
    if (together && !error_is_agreed) distributed::abort_all(message_of(std::current_exception()));
    throw;
  }
  for (Callback* callback : callbacks) callback->set_model(nullptr);
  return history;
}

// ---- evaluate and predict ------------------------------------------------------------------------

namespace {

// The callbacks given to evaluate or predict, attached to the model for the call.
class AttachedCallbacks {
 public:
  AttachedCallbacks(const std::vector<Shared<Callback>>& callbacks, Sequential* model) {
    for (const Shared<Callback>& callback : callbacks) {
      callback->set_model(model);
      list_.push_back(callback.get());
    }
  }
  ~AttachedCallbacks() {
    for (Callback* callback : list_) callback->set_model(nullptr);
  }
  AttachedCallbacks(const AttachedCallbacks&) = delete;
  AttachedCallbacks& operator=(const AttachedCallbacks&) = delete;
  const std::vector<Callback*>& list() const { return list_; }

 private:
  std::vector<Callback*> list_;
};

}  // namespace

Logs Sequential::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  check_compiled("evaluate");
  check_pair(x, y);
  build_from_data(x, "x");
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  if (options.steps < 0) throw ValueError("steps must be at least 0 (0: all the data), got " + std::to_string(options.steps));
  data::check_sample_weight(options.sample_weight, x.rows(), "evaluate");
  int64_t steps = (x.rows() + options.batch_size - 1) / options.batch_size;
  if (options.steps > 0) steps = std::min(steps, options.steps);
  const AttachedCallbacks callbacks(options.callbacks, this);
  const std::vector<int64_t> rows = row_numbers(0, x.rows());
  return evaluate_batches(row_batches(x, y, options.sample_weight, rows, options.batch_size), steps, resolve_verbose(options.verbose),
                          callbacks.list(), options.steps);
}

Logs Sequential::evaluate(const data::Dataset<LabeledData>& batches, const EvaluateOptions& options) {
  check_compiled("evaluate");
  if (options.steps < 0) throw ValueError("steps must be at least 0 (0: all the data), got " + std::to_string(options.steps));
  if (!options.sample_weight.empty()) {
    throw ValueError("sample_weight applies to arrays; a dataset carries its weights in its batches: "
                     "from_tensor_slices(x, y, sample_weight)");
  }
  const AttachedCallbacks callbacks(options.callbacks, this);
  return evaluate_dataset(batches, resolve_verbose(options.verbose), callbacks.list(), options.steps);
}

Logs Sequential::evaluate_dataset(const data::Dataset<LabeledData>& batches, int verbose, const std::vector<Callback*>& callbacks,
                                  int64_t step_limit) {
  const int64_t cardinality = batches.cardinality();
  if (cardinality == data::kInfiniteCardinality && step_limit == 0) {
    throw ValueError("evaluate: the dataset repeats forever; take() a part of it, or give steps");
  }
  data::Iteration<LabeledData> iteration(batches.node());
  std::optional<LabeledData> current;
  BatchSource next_batch = [&]() -> const LabeledData* {
    current = iteration.next();
    return current ? &*current : nullptr;
  };
  int64_t steps = cardinality >= 0 ? cardinality : 0;
  if (step_limit > 0) steps = steps > 0 ? std::min(steps, step_limit) : step_limit;
  return evaluate_batches(next_batch, steps, verbose, callbacks, step_limit);
}

Logs Sequential::evaluate_batches(const BatchSource& next_batch, int64_t steps, int verbose, const std::vector<Callback*>& callbacks,
                                  int64_t step_limit) {
  const DenormalsFlushedToZero flush_denormals;
  const BatchScheduling batch_scheduling;  // parallel.hpp: waking up for a batch never preempts its producer
  Loss& loss = **loss_;
  std::optional<ProgressBar> bar;
  if (verbose > 0) {
    bar.emplace(steps, verbose == 1 ? ProgressBar::Mode::InPlace : ProgressBar::Mode::EpochSummary, std::cout);
  }
  for (Shared<Metric>& metric : metrics_) metric->reset();
  double loss_sum = 0.0;
  int64_t samples_seen = 0, step = 0;
  Logs logs;
  for (Callback* callback : callbacks) callback->on_test_begin(logs);
  // Distributed, an error on one rank ends every rank: the others would wait for its figures forever.
  try {
    while (step_limit == 0 || step < step_limit) {
      const LabeledData* batch = next_batch();
      if (!batch) break;
      if (batch->x.rows() == 0) {  // a rank's share of a short last batch (distributed)
        ++step;
        continue;
      }
      for (Callback* callback : callbacks) callback->on_test_batch_begin(step, logs);
      if (!built_) build_from_data(batch->x, "x");
      const Tensor& prediction = forward(batch->x, /*training=*/false);
      loss.check_targets(prediction.shape(), batch->y);
      if (!data::sample_weight_fits(batch->sample_weight, batch->x.rows())) {
        data::check_sample_weight(batch->sample_weight, batch->x.rows(), "evaluate: batch " + std::to_string(step + 1));
      }
      const std::span<const float> sample_weight = batch->sample_weight.values();
      loss_sum += loss.compute_weighted(prediction, batch->y, sample_weight, nullptr, GradientWith::Predictions) * static_cast<double>(batch->x.rows());
      samples_seen += batch->x.rows();
      for (Shared<Metric>& metric : metrics_) metric->update_weighted(prediction, batch->y, sample_weight);
      logs["loss"] = loss_sum / static_cast<double>(samples_seen);
      for (Shared<Metric>& metric : metrics_) logs[metric->name()] = metric->result();
      for (Callback* callback : callbacks) callback->on_test_batch_end(step, logs);
      ++step;
      if (bar && step < steps) bar->update(step, {logs.begin(), logs.end()});
    }
  } catch (...) {
    if (distributed::active()) distributed::abort_all(message_of(std::current_exception()));
    throw;
  }
  if (distributed::active()) logs = average_over_ranks(loss_sum, samples_seen);
  if (bar) bar->update(step, {logs.begin(), logs.end()}, /*finalize=*/true);
  for (Callback* callback : callbacks) callback->on_test_end(logs);
  return logs;
}

Tensor Sequential::predict(const Tensor& x, const PredictOptions& options) {
  build_from_data(x, "x");
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  const DenormalsFlushedToZero flush_denormals;
  const BatchScheduling batch_scheduling;  // parallel.hpp: waking up for a batch never preempts its producer
  const AttachedCallbacks callbacks(options.callbacks, this);
  Tensor predictions(output_shape().with_batch(x.rows()));
  const int64_t output_row_size = predictions.row_size();
  const Logs no_logs;  // Keras passes the outputs here; kiln's logs hold numbers only
  const std::vector<int64_t> rows = row_numbers(0, x.rows());
  for (Callback* callback : callbacks.list()) callback->on_predict_begin(no_logs);
  for (int64_t begin = 0, step = 0; begin < x.rows(); begin += options.batch_size, ++step) {
    for (Callback* callback : callbacks.list()) callback->on_predict_batch_begin(step, no_logs);
    const int64_t end = std::min(begin + options.batch_size, x.rows());
    data::gather_rows(x, std::span<const int64_t>(rows).subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)),
                      batch_.x);
    const Tensor& prediction = forward(batch_.x, /*training=*/false);
    std::memcpy(predictions.data() + begin * output_row_size, prediction.data(), sizeof(float) * static_cast<size_t>(prediction.size()));
    for (Callback* callback : callbacks.list()) callback->on_predict_batch_end(step, no_logs);
  }
  for (Callback* callback : callbacks.list()) callback->on_predict_end(no_logs);
  return predictions;
}

Tensor Sequential::predict(const data::Dataset<Tensor>& batches) {
  if (batches.cardinality() == data::kInfiniteCardinality) throw ValueError("predict: the dataset repeats forever; take() a part of it");
  const DenormalsFlushedToZero flush_denormals;
  const BatchScheduling batch_scheduling;  // parallel.hpp: waking up for a batch never preempts its producer
  std::vector<Tensor> outputs;
  for (const Tensor& batch : batches) {
    if (!built_) build_from_data(batch, "x");
    outputs.push_back(forward(batch, /*training=*/false));
  }
  std::vector<Tensor> rows;
  for (Tensor& output : outputs) {
    for (Tensor& row : data::unstack(std::move(output))) rows.push_back(std::move(row));
  }
  if (rows.empty()) return Tensor(output_shape().with_batch(0));
  return data::stack(std::move(rows));
}

}  // namespace kiln
