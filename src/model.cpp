// Sequential: building the arena, the training step, the epoch loop, evaluation and weight files.
#include "kiln/model.hpp"

#include "kiln/error.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/progress_bar.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <map>
#include <numeric>
#include <sstream>

namespace kiln {
namespace {

// Each parameter starts on a 64-byte boundary of the arena, so vector loads over it are aligned.
constexpr int64_t kParameterAlignmentFloats = 16;

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

int resolve_verbose(int verbose) {
  if (verbose != kVerboseAuto) return verbose;
  return ProgressBar::stream_is_terminal(std::cout) ? 1 : 2;
}

std::string with_thousands_separators(int64_t value) {
  std::string digits = std::to_string(value), result;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) result += ',';
    result += digits[i];
  }
  return result;
}

// "397.54 KB", as Keras prints parameter memory (1 KB = 1024 bytes).
std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 3) {
    bytes /= 1024.0;
    ++unit;
  }
  std::ostringstream text;
  text << std::fixed << std::setprecision(2) << bytes << " " << units[unit];
  return text.str();
}

}  // namespace

Sequential::Sequential(std::vector<Shared<Layer>> layers, std::string name) : name_(std::move(name)) {
  for (Shared<Layer>& layer : layers) add(std::move(layer));
}

void Sequential::add(Shared<Layer> layer) {
  // Keras's automatic names: the type in snake case, then _1, _2 ... for repeats.
  if (layer->name().empty()) {
    const std::string base = lowercase(layer->type_name());
    int repeats = 0;
    for (const Shared<Layer>& existing : layers_) {
      if (lowercase(existing->type_name()) == base) ++repeats;
    }
    layer->set_name(repeats == 0 ? base : base + "_" + std::to_string(repeats));
  }
  for (const Shared<Layer>& existing : layers_) {
    if (existing->name() == layer->name()) {
      throw ValueError("model '" + name_ + "' already has a layer named '" + layer->name() + "'");
    }
  }
  layers_.push_back(std::move(layer));
  // The seed is drawn now, not at build time, so a seed set before the model is written fixes its
  // initial weights however late the model is built.
  layer_seeds_.push_back(next_seed());

  // As in Keras, a model whose input shape is known is built layer by layer as layers arrive:
  // the new layer's parameters go at the end of the arena, so earlier weights stay as they are.
  if (built_) {
    Layer& added = *layers_.back();
    output_shapes_.push_back(added.build(output_shapes_.back()));
    bind_parameters();
    added.initialize(layer_seeds_.back());
  } else {
    build_if_input_shape_declared();
  }
}

// Keras builds a model as soon as its input shape is known; here that is when it is first needed.
bool Sequential::build_if_input_shape_declared() {
  if (!built_ && !layers_.empty() && layers_.front()->declared_input_shape()) {
    build(*layers_.front()->declared_input_shape());
  }
  return built_;
}

void Sequential::build(const Shape& input_shape) {
  if (built_) {
    if (!(input_shape == input_shape_)) {
      throw ShapeError("model '" + name_ + "' was built for samples of shape " + input_shape_.str() + ", got " +
                       input_shape.str());
    }
    return;
  }
  if (layers_.empty()) throw Error("model '" + name_ + "' has no layers to build");
  output_shapes_.clear();
  Shape shape = input_shape;
  for (Shared<Layer>& layer : layers_) {
    shape = layer->build(shape);
    output_shapes_.push_back(shape);
  }
  input_shape_ = input_shape;
  // The first layer's input gradient would go nowhere: skip computing it.
  layers_.front()->set_input_gradient_needed(false);
  bind_parameters();
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->initialize(layer_seeds_[i]);
  built_ = true;
}

// Lays every parameter out in one arena and points the layers' views into it.
void Sequential::bind_parameters() {
  int64_t arena_size = 0;
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) arena_size += round_up(parameter->size(), kParameterAlignmentFloats);
  }
  // resize, not assign: when a layer is added to a built model, the existing weights keep their
  // offsets and values; only the pointers are refreshed.
  parameter_values_.resize(static_cast<size_t>(arena_size), 0.0f);
  parameter_gradients_.resize(static_cast<size_t>(arena_size), 0.0f);
  int64_t offset = 0;
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      parameter->value = parameter_values_.data() + offset;
      parameter->gradient = parameter_gradients_.data() + offset;
      offset += round_up(parameter->size(), kParameterAlignmentFloats);
    }
  }
}

void Sequential::compile(Shared<Optimizer> optimizer, Shared<Loss> loss, std::vector<Shared<Metric>> metrics) {
  optimizer_ = std::move(optimizer);
  loss_ = std::move(loss);
  metrics_ = std::move(metrics);
}

void Sequential::check_compiled(const std::string& caller) const {
  if (!optimizer_ || !loss_) {
    throw Error("model '" + name_ + "' must be compiled before " + caller +
                "(): call compile(optimizer, loss, metrics) first");
  }
}

Optimizer& Sequential::optimizer() {
  check_compiled("optimizer");
  return **optimizer_;
}

Layer& Sequential::layer(const std::string& layer_name) {
  for (Shared<Layer>& layer : layers_) {
    if (layer->name() == layer_name) return *layer;
  }
  throw ValueError("model '" + name_ + "' has no layer named '" + layer_name + "'");
}

int64_t Sequential::parameter_count() const {
  int64_t count = 0;
  for (const Shared<Layer>& layer : layers_) count += layer->parameter_count();
  return count;
}

// ---- summary ------------------------------------------------------------------------------------

void Sequential::summary(std::ostream& out) {
  build_if_input_shape_declared();
  const int name_width = 33, shape_width = 24, count_width = 15;
  auto pad = [](std::string text, int width, bool right) {
    // Box-drawing characters are 3 bytes but one column; only ASCII goes in cells.
    if (static_cast<int>(text.size()) < width) {
      text = right ? std::string(static_cast<size_t>(width) - text.size(), ' ') + text
                   : text + std::string(static_cast<size_t>(width) - text.size(), ' ');
    }
    return text;
  };
  auto rule = [](const char* left, const char* fill, const char* middle, const char* right, const int* widths) {
    std::string line = left;
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < widths[c]; ++i) line += fill;
      line += c < 2 ? middle : right;
    }
    return line + "\n";
  };
  const int widths[] = {name_width, shape_width, count_width};
  out << "Model: \"" << name_ << "\"\n";
  out << rule("┏", "━", "┳", "┓", widths);
  out << "┃ " << pad("Layer (type)", name_width - 2, false) << " ┃ " << pad("Output Shape", shape_width - 2, false)
      << " ┃ " << pad("Param #", count_width - 2, true) << " ┃\n";
  out << rule("┡", "━", "╇", "┩", widths);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = *layers_[i];
    const std::string shape = built_ ? output_shapes_[i].keras_str() : "?";
    const std::string count = built_ ? with_thousands_separators(layer.parameter_count()) : "0 (unbuilt)";
    out << "│ " << pad(layer.name() + " (" + layer.type_name() + ")", name_width - 2, false) << " │ "
        << pad(shape, shape_width - 2, false) << " │ " << pad(count, count_width - 2, true) << " │\n";
    if (i + 1 < layers_.size()) out << rule("├", "─", "┼", "┤", widths);
  }
  out << rule("└", "─", "┴", "┘", widths);
  const int64_t total = parameter_count();
  const double bytes = static_cast<double>(total) * sizeof(float);
  out << " Total params: " << with_thousands_separators(total) << " (" << human_bytes(bytes) << ")\n";
  out << " Trainable params: " << with_thousands_separators(total) << " (" << human_bytes(bytes) << ")\n";
  out << " Non-trainable params: 0 (0.00 B)\n";
}

// ---- data checks and batch assembly --------------------------------------------------------------

void Sequential::build_from_data(const Tensor& x, const std::string& argument_name) {
  if (x.rank() < 2) {
    throw ShapeError(argument_name + " must have a batch axis and at least one feature axis, got shape " +
                     x.shape().str());
  }
  const Shape sample_shape = x.shape().without_first_axis();
  if (!build_if_input_shape_declared()) {
    build(sample_shape);
    return;
  }
  if (!(sample_shape == input_shape_)) {
    std::string hint;
    if (sample_shape.element_count() == input_shape_.element_count()) hint = " (reshape the data, or add Flatten)";
    throw ShapeError("model '" + name_ + "' expects samples of shape " + input_shape_.str() + ", but " + argument_name +
                     " has samples of shape " + sample_shape.str() + hint);
  }
}

void Sequential::check_pair(const Tensor& x, const Tensor& y) const {
  if (x.rows() != y.rows()) {
    throw ShapeError("x has " + std::to_string(x.rows()) + " samples but y has " + std::to_string(y.rows()) +
                     " (shapes " + x.shape().str() + " and " + y.shape().str() + ")");
  }
}

void Sequential::gather_rows(const Tensor& source, std::span<const int64_t> rows, Tensor& batch) const {
  Shape shape = source.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  batch.resize(shape);
  const int64_t row_size = source.row_size();
  for (size_t r = 0; r < rows.size(); ++r) {
    std::memcpy(batch.data() + static_cast<int64_t>(r) * row_size, source.data() + rows[r] * row_size,
                sizeof(float) * static_cast<size_t>(row_size));
  }
}

void Sequential::copy_rows(const Tensor& source, RowRange rows, Tensor& batch) const {
  Shape shape = source.shape();
  shape[0] = rows.size();
  batch.resize(shape);
  std::memcpy(batch.data(), source.data() + rows.begin * source.row_size(), sizeof(float) * static_cast<size_t>(batch.size()));
}

// ---- the training step ---------------------------------------------------------------------------

const Tensor& Sequential::forward(const Tensor& x, bool training) {
  if (!built_) build_from_data(x, "x");
  const Tensor* activations = &x;
  for (Shared<Layer>& layer : layers_) activations = &layer->forward(*activations, training);
  return *activations;
}

// forward -> loss and its gradient -> backward, last layer first -> one optimizer step over the arena
double Sequential::train_on_batch(const Tensor& x, const Tensor& y) {
  check_compiled("train_on_batch");
  const Tensor& prediction = forward(x, /*training=*/true);
  Loss& loss = **loss_;
  loss.check_targets(prediction.shape(), y);
  Layer& last = *layers_.back();
  const bool fused = loss.fuses_with(last.output_activation());
  const double loss_value = loss.compute(prediction, y, &loss_gradient_, fused);

  const Tensor* gradient = fused ? &last.backward_from_preactivation(loss_gradient_) : &last.backward(loss_gradient_);
  for (size_t i = layers_.size() - 1; i-- > 0;) gradient = &layers_[i]->backward(*gradient);

  (*optimizer_)->apply(parameter_values_, parameter_gradients_);
  for (Shared<Metric>& metric : metrics_) metric->update(prediction, y);
  return loss_value;
}

// ---- fit -----------------------------------------------------------------------------------------

void Sequential::check_fit_options(const FitOptions& options) const {
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  if (!(options.validation_split >= 0.0 && options.validation_split < 1.0)) {
    throw ValueError("validation_split must be in [0, 1), got " + std::to_string(options.validation_split));
  }
  if (options.validation_split > 0.0 && options.validation_data) {
    throw ValueError("give either validation_split or validation_data, not both");
  }
  if (options.steps_per_epoch < 0) {
    throw ValueError("steps_per_epoch must be positive (or 0 for a whole pass), got " + std::to_string(options.steps_per_epoch));
  }
}

// Batches [begin, end) of `rows`, in order, copied into batch_.
Sequential::BatchSource Sequential::row_batches(const Tensor& x, const Tensor& y, RowRange rows, int64_t batch_size) {
  return [this, &x, &y, rows, batch_size, begin = rows.begin]() mutable -> const LabeledData* {
    if (begin >= rows.end) return nullptr;
    const RowRange batch{begin, std::min(begin + batch_size, rows.end)};
    begin = batch.end;
    copy_rows(x, batch, batch_.x);
    copy_rows(y, batch, batch_.y);
    return &batch_;
  };
}

History Sequential::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  check_compiled("fit");
  check_pair(x, y);
  build_from_data(x, "x");
  check_fit_options(options);
  if (options.steps_per_epoch > 0) throw ValueError("steps_per_epoch applies to datasets; with arrays every epoch is one pass");
  const ValidationData* validation_data = options.validation_data ? &*options.validation_data : nullptr;
  if (validation_data && validation_data->arrays) {
    check_pair(validation_data->arrays->x, validation_data->arrays->y);
    build_from_data(validation_data->arrays->x, "validation_data.x");
  }
  // Checked once over all the data, so an error names the sample's row in y, not in a batch.
  (*loss_)->check_targets(output_shape().with_batch(y.rows()), y);
  if (validation_data && validation_data->arrays) {
    (*loss_)->check_targets(output_shape().with_batch(validation_data->arrays->y.rows()), validation_data->arrays->y);
  }

  // Keras's rule: the validation split is the *last* share of the samples, before any shuffling.
  const int64_t sample_count = x.rows();
  const auto train_count = static_cast<int64_t>(static_cast<double>(sample_count) * (1.0 - options.validation_split));
  const RowRange validation_rows{train_count, sample_count};
  if (train_count == 0) throw ValueError("no training samples left after validation_split");
  if (options.validation_split > 0.0 && validation_rows.size() == 0) {
    throw ValueError("validation_split " + std::to_string(options.validation_split) + " of " +
                     std::to_string(sample_count) + " samples leaves no validation samples");
  }

  // Each epoch visits the training rows in a new order (Fisher-Yates, from fit's own generator,
  // so a seed reproduces it) and gathers each batch's rows into batch_.
  std::vector<int64_t> order(static_cast<size_t>(train_count));
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng shuffle_rng(next_seed());
  const int64_t batch_size = options.batch_size;
  auto start_epoch = [&]() -> BatchSource {
    if (options.shuffle) {
      for (int64_t i = train_count - 1; i > 0; --i) std::swap(order[i], order[shuffle_rng.below(i + 1)]);
    }
    return [this, &x, &y, &order, batch_size, train_count, begin = int64_t{0}]() mutable -> const LabeledData* {
      if (begin >= train_count) return nullptr;
      const int64_t end = std::min(begin + batch_size, train_count);
      const std::span<const int64_t> rows(order.data() + begin, static_cast<size_t>(end - begin));
      begin = end;
      gather_rows(x, rows, batch_.x);
      gather_rows(y, rows, batch_.y);
      return &batch_;
    };
  };
  std::function<Logs()> validate;
  if (validation_data && validation_data->arrays) {
    const LabeledData& v = *validation_data->arrays;
    validate = [&] { return evaluate_batches(row_batches(v.x, v.y, {0, v.x.rows()}, batch_size), 0, 0); };
  } else if (validation_data) {
    validate = [&] { return evaluate(*validation_data->dataset, {.verbose = 0}); };
  } else if (validation_rows.size() > 0) {
    validate = [&] { return evaluate_batches(row_batches(x, y, validation_rows, batch_size), 0, 0); };
  }
  return train(start_epoch, (train_count + batch_size - 1) / batch_size, validate, options);
}

History Sequential::fit(const data::Dataset<LabeledData>& batches, const FitOptions& options) {
  check_compiled("fit");
  check_fit_options(options);
  if (options.validation_split > 0.0) {
    throw ValueError("validation_split needs arrays; with a dataset, pass validation_data (for example dataset.take(k))");
  }
  const int64_t cardinality = batches.cardinality();
  if (cardinality == data::kInfiniteCardinality && options.steps_per_epoch == 0) {
    throw ValueError("the training dataset repeats forever: give fit a steps_per_epoch");
  }
  // Without steps_per_epoch every epoch is a fresh pass (a new iteration: shuffles reshuffle);
  // with it, one iteration runs on across epochs, as in Keras.
  std::shared_ptr<data::Iteration<LabeledData>> iteration;
  std::optional<LabeledData> current;
  const int64_t steps_per_epoch = options.steps_per_epoch;
  bool ran_out = false;
  auto start_epoch = [&]() -> BatchSource {
    if (!iteration || steps_per_epoch == 0) {
      iteration.reset();  // the previous epoch's threads stop before the next epoch's start
      iteration = std::make_shared<data::Iteration<LabeledData>>(batches.node());
    }
    return [&, taken = int64_t{0}]() mutable -> const LabeledData* {
      if (steps_per_epoch > 0 && taken == steps_per_epoch) return nullptr;
      current = iteration->next();
      if (!current) {
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
      return &*current;
    };
  };
  std::function<Logs()> validate;
  if (options.validation_data) {
    const ValidationData& v = *options.validation_data;
    validate = [&] {
      if (v.dataset) return evaluate(*v.dataset, {.verbose = 0});
      return evaluate_batches(row_batches(v.arrays->x, v.arrays->y, {0, v.arrays->x.rows()}, options.batch_size), 0, 0);
    };
  }
  const int64_t steps = steps_per_epoch > 0 ? steps_per_epoch : (cardinality >= 0 ? cardinality : 0);
  return train(start_epoch, steps, validate, options);
}

// The epoch loop both fits share. steps_per_epoch 0 means "unknown" (the progress bar says so).
History Sequential::train(const std::function<BatchSource()>& start_epoch, int64_t steps_per_epoch,
                          const std::function<Logs()>& validate, const FitOptions& options) {
  const int verbose = resolve_verbose(options.verbose);
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

  stop_training = false;
  Logs logs;
  for (Callback* callback : callbacks) callback->on_train_begin(logs);
  for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training; ++epoch) {
    logs.clear();
    for (Callback* callback : callbacks) callback->on_epoch_begin(epoch, logs);
    for (Shared<Metric>& metric : metrics_) metric->reset();
    const auto epoch_start = std::chrono::steady_clock::now();
    std::chrono::duration<double> input_wait{0};
    BatchSource next_batch = start_epoch();
    double loss_sum = 0.0;
    int64_t samples_seen = 0;
    for (int64_t step = 0;; ++step) {
      // The time spent getting a batch is time the model was not training: if it is a large share
      // of the epoch, training is input-bound (prefetch, or a faster pipeline, would help).
      const auto wait_start = std::chrono::steady_clock::now();
      const LabeledData* batch = next_batch();
      input_wait += std::chrono::steady_clock::now() - wait_start;
      if (!batch) break;
      for (Callback* callback : callbacks) callback->on_train_batch_begin(step, logs);
      const double batch_loss = train_on_batch(batch->x, batch->y);
      if (!std::isfinite(batch_loss)) {
        throw ValueError("the loss became " + std::to_string(batch_loss) + " at epoch " + std::to_string(epoch + 1) +
                         ", step " + std::to_string(step + 1) + ": try a lower learning rate, or check the data for NaN");
      }
      // Keras shows running means over the epoch so far, each batch weighted by its size.
      loss_sum += batch_loss * static_cast<double>(batch->x.rows());
      samples_seen += batch->x.rows();
      logs["loss"] = loss_sum / static_cast<double>(samples_seen);
      for (Shared<Metric>& metric : metrics_) logs[metric->name()] = metric->result();
      for (Callback* callback : callbacks) callback->on_train_batch_end(step, logs);
    }
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    logs["input_wait"] = epoch_seconds > 0 ? input_wait.count() / epoch_seconds : 0.0;
    if (validate) {
      for (const auto& [metric_name, value] : validate()) logs["val_" + metric_name] = value;
    }
    for (Callback* callback : callbacks) callback->on_epoch_end(epoch, logs);
  }
  for (Callback* callback : callbacks) callback->on_train_end(logs);
  for (Callback* callback : callbacks) callback->set_model(nullptr);
  return history;
}

// ---- evaluate and predict ------------------------------------------------------------------------

Logs Sequential::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  check_compiled("evaluate");
  check_pair(x, y);
  build_from_data(x, "x");
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  const int64_t steps = (x.rows() + options.batch_size - 1) / options.batch_size;
  return evaluate_batches(row_batches(x, y, {0, x.rows()}, options.batch_size), steps, resolve_verbose(options.verbose));
}

Logs Sequential::evaluate(const data::Dataset<LabeledData>& batches, const EvaluateOptions& options) {
  check_compiled("evaluate");
  data::Iteration<LabeledData> iteration(batches.node());
  std::optional<LabeledData> current;
  BatchSource next_batch = [&]() -> const LabeledData* {
    current = iteration.next();
    return current ? &*current : nullptr;
  };
  const int64_t cardinality = batches.cardinality();
  if (cardinality == data::kInfiniteCardinality) throw ValueError("evaluate: the dataset repeats forever; take() a part of it");
  return evaluate_batches(next_batch, cardinality >= 0 ? cardinality : 0, resolve_verbose(options.verbose));
}

Logs Sequential::evaluate_batches(const BatchSource& next_batch, int64_t steps, int verbose) {
  Loss& loss = **loss_;
  std::optional<ProgressBar> bar;
  if (verbose > 0) {
    bar.emplace(steps, verbose == 1 ? ProgressBar::Mode::InPlace : ProgressBar::Mode::EpochSummary, std::cout);
  }
  for (Shared<Metric>& metric : metrics_) metric->reset();
  double loss_sum = 0.0;
  int64_t samples_seen = 0, step = 0;
  Logs logs;
  while (const LabeledData* batch = next_batch()) {
    if (!built_) build_from_data(batch->x, "x");
    const Tensor& prediction = forward(batch->x, /*training=*/false);
    loss.check_targets(prediction.shape(), batch->y);
    loss_sum += loss.compute(prediction, batch->y, nullptr, false) * static_cast<double>(batch->x.rows());
    samples_seen += batch->x.rows();
    for (Shared<Metric>& metric : metrics_) metric->update(prediction, batch->y);
    logs["loss"] = loss_sum / static_cast<double>(samples_seen);
    for (Shared<Metric>& metric : metrics_) logs[metric->name()] = metric->result();
    ++step;
    if (bar && step < steps) bar->update(step, {logs.begin(), logs.end()});
  }
  if (bar) bar->update(step, {logs.begin(), logs.end()}, /*finalize=*/true);
  return logs;
}

Tensor Sequential::predict(const Tensor& x, const PredictOptions& options) {
  build_from_data(x, "x");
  if (options.batch_size < 1) throw ValueError("batch_size must be at least 1, got " + std::to_string(options.batch_size));
  Tensor predictions(output_shape().with_batch(x.rows()));
  const int64_t output_row_size = predictions.row_size();
  for (int64_t begin = 0; begin < x.rows(); begin += options.batch_size) {
    const RowRange batch{begin, std::min(begin + options.batch_size, x.rows())};
    copy_rows(x, batch, batch_.x);
    const Tensor& prediction = forward(batch_.x, /*training=*/false);
    std::memcpy(predictions.data() + begin * output_row_size, prediction.data(), sizeof(float) * static_cast<size_t>(prediction.size()));
  }
  return predictions;
}

Tensor Sequential::predict(const data::Dataset<Tensor>& batches) {
  if (batches.cardinality() == data::kInfiniteCardinality) throw ValueError("predict: the dataset repeats forever; take() a part of it");
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

// ---- weights -------------------------------------------------------------------------------------

void Sequential::set_weights(std::span<const float> weights) {
  if (weights.size() != parameter_values_.size()) {
    throw ShapeError("model '" + name_ + "' has a parameter arena of " + std::to_string(parameter_values_.size()) +
                     " floats, got " + std::to_string(weights.size()));
  }
  std::copy(weights.begin(), weights.end(), parameter_values_.begin());
}

void Sequential::save_weights(const std::string& path) {
  if (!build_if_input_shape_declared()) throw Error("model '" + name_ + "' has no weights to save yet: build or fit it first");
  std::vector<io::NamedArray> arrays;
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      arrays.push_back({layer->name() + "/" + parameter->name, parameter->shape,
                        std::vector<float>(parameter->value, parameter->value + parameter->size())});
    }
  }
  io::write_npz(path, arrays);
}

void Sequential::load_weights(const std::string& path) {
  if (!build_if_input_shape_declared()) {
    throw Error("model '" + name_ + "' must be built before loading weights into it: give the first layer an input "
                "shape, or call build(input_shape)");
  }
  std::map<std::string, io::NamedArray> arrays;
  for (io::NamedArray& array : io::read_npz(path)) arrays.emplace(array.name, std::move(array));
  size_t matched = 0;
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      const std::string key = layer->name() + "/" + parameter->name;
      auto found = arrays.find(key);
      if (found == arrays.end()) throw FileError(path + " has no array '" + key + "' for model '" + name_ + "'");
      if (!(found->second.shape == parameter->shape)) {
        throw ShapeError(path + ": '" + key + "' has shape " + found->second.shape.str() + " but the model's is " +
                         parameter->shape.str());
      }
      ++matched;
    }
  }
  if (matched != arrays.size()) {
    std::string extra;
    for (const auto& [key, array] : arrays) {
      bool used = false;
      for (Shared<Layer>& layer : layers_) {
        for (Parameter* parameter : layer->parameters()) used |= key == layer->name() + "/" + parameter->name;
      }
      if (!used) extra += (extra.empty() ? "'" : ", '") + key + "'";
    }
    throw FileError(path + " holds arrays the model '" + name_ + "' does not have: " + extra);
  }
  // Everything checked: only now overwrite, so a bad file leaves the model as it was.
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      const io::NamedArray& array = arrays.at(layer->name() + "/" + parameter->name);
      std::copy(array.values.begin(), array.values.end(), parameter->value);
    }
  }
}

}  // namespace kiln
