// Sequential: layers and names, building the parameter arena, summary, the training step, and
// weight files. The epoch loop (fit, evaluate, predict) is in fit.cpp.
#include "kiln/model.hpp"

#include "kiln/denormals.hpp"
#include "kiln/error.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/parallel.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <iomanip>
#include <map>
#include <sstream>

namespace kiln {
namespace {

// Each parameter starts on a 64-byte boundary of the arena, so vector loads over it are aligned.
constexpr int64_t kParameterAlignmentFloats = 16;

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Keras's automatic layer names: "Dense" -> "dense", "MaxPooling2D" -> "max_pooling2d",
// "BatchNormalization" -> "batch_normalization". An underscore goes before a capital that starts
// a lowercase run ("Pooling") and between a lowercase letter and a capital; then all is lowercase.
std::string snake_case(const std::string& type) {
  std::string name;
  for (size_t i = 0; i < type.size(); ++i) {
    const auto c = static_cast<unsigned char>(type[i]);
    if (i > 0 && std::isupper(c)) {
      const auto previous = static_cast<unsigned char>(type[i - 1]);
      const bool starts_word = i + 1 < type.size() && std::islower(static_cast<unsigned char>(type[i + 1]));
      if (std::islower(previous) || starts_word) name += '_';
    }
    name += static_cast<char>(std::tolower(c));
  }
  return name;
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
    const std::string base = snake_case(layer->type_name());
    int repeats = 0;
    for (const Shared<Layer>& existing : layers_) {
      if (snake_case(existing->type_name()) == base) ++repeats;
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
    plan_backward();
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
  bind_parameters();
  plan_backward();
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->initialize(layer_seeds_[i]);
  built_ = true;
}

// Backward runs from the last layer down to the first layer that has parameters, and stops there:
// the layers before it have nothing to learn, so the gradient w.r.t. its input would go nowhere.
// For Flatten -> Dense(784 -> 128) this skips dx = dz W^T, a GEMM as large as the forward one.
void Sequential::plan_backward() {
  backward_stop_ = 0;
  while (backward_stop_ + 1 < layers_.size() && layers_[backward_stop_]->parameter_count() == 0) ++backward_stop_;
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_input_gradient_needed(i > backward_stop_);
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

Loss& Sequential::loss() {
  check_compiled("loss");
  return **loss_;
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
  int64_t total = 0, trainable = 0;
  for (const Shared<Layer>& layer : layers_) {
    for (const Parameter* parameter : layer->parameters()) {
      total += parameter->size();
      if (parameter->trainable) trainable += parameter->size();
    }
  }
  const auto line = [&](const char* what, int64_t count) {
    out << " " << what << ": " << with_thousands_separators(count) << " ("
        << human_bytes(static_cast<double>(count) * sizeof(float)) << ")\n";
  };
  line("Total params", total);
  line("Trainable params", trainable);
  line("Non-trainable params", total - trainable);
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

// ---- the training step ---------------------------------------------------------------------------

const Tensor& Sequential::forward(const Tensor& x, bool training) {
  const DenormalsFlushedToZero flush_denormals;
  if (!built_) build_from_data(x, "x");
  const Tensor* activations = &x;
  for (Shared<Layer>& layer : layers_) activations = &layer->forward(*activations, training);
  return *activations;
}

// forward -> loss and its gradient -> backward, last layer first -> one optimizer step over the arena
namespace {

constexpr uint32_t kExponentBits = 0x7F800000u;

// The largest exponent field among the values. NaN and the infinities, and only they, have every
// exponent bit set. An integer max vectorises (a float sum would need -ffast-math's reordering).
uint32_t highest_exponent(const float* values, int64_t count) {
  uint32_t highest = 0;
  for (int64_t i = 0; i < count; ++i) highest = std::max(highest, std::bit_cast<uint32_t>(values[i]) & kExponentBits);
  return highest;
}

// True if no value is NaN or infinite. Checked in 16 tiles on the team: the arena's gradients were
// just written by all its threads, and one core reading them all would wait on the others' caches.
bool all_finite(std::span<const float> values) {
  constexpr int64_t kTiles = 16;
  const auto n = static_cast<int64_t>(values.size());
  const int64_t tiles = n >= kParallelMinElements ? kTiles : 1;
  std::array<uint32_t, kTiles> highest{};
  parallel_tiles(tiles, [&](int64_t first_tile, int64_t end_tile) {
    for (int64_t tile = first_tile; tile < end_tile; ++tile) {
      const int64_t begin = tile * n / tiles, end = (tile + 1) * n / tiles;
      highest[static_cast<size_t>(tile)] = highest_exponent(values.data() + begin, end - begin);
    }
  });
  return *std::max_element(highest.begin(), highest.end()) != kExponentBits;
}

}  // namespace

Sequential::StepResult Sequential::train_step(const Tensor& x, const Tensor& y, std::span<const float> sample_weight) {
  const StepResult step = compute_gradients(x, y, sample_weight);
  if (step.applied) apply_gradients();
  return step;
}

Sequential::StepResult Sequential::compute_gradients(const Tensor& x, const Tensor& y, std::span<const float> sample_weight) {
  const double loss_value = forward_and_loss(x, y, sample_weight);
  backward_from_loss();
  // A NaN or infinite loss or gradient would spread into every weight it touches: such a step
  // is not applied, so whoever catches the error still holds the model as it was.
  if (!std::isfinite(loss_value) || !gradients_finite()) return {loss_value, false};
  update_metrics(y, sample_weight);
  return {loss_value, true};
}

double Sequential::forward_and_loss(const Tensor& x, const Tensor& y, std::span<const float> sample_weight) {
  check_compiled("train_on_batch");
  const DenormalsFlushedToZero flush_denormals;
  training_prediction_ = &forward(x, /*training=*/true);
  Loss& loss = **loss_;
  loss.check_targets(training_prediction_->shape(), y);
  loss_gradient_with_ =
      loss.fuses_with(layers_.back()->output_activation()) ? GradientWith::PreActivation : GradientWith::Predictions;
  return loss.compute_weighted(*training_prediction_, y, sample_weight, &loss_gradient_, loss_gradient_with_);
}

void Sequential::backward_from_loss() {
  const DenormalsFlushedToZero flush_denormals;
  Layer& last = *layers_.back();
  const Tensor* gradient = loss_gradient_with_ == GradientWith::PreActivation ? &last.backward_from_preactivation(loss_gradient_)
                                                                             : &last.backward(loss_gradient_);
  for (size_t i = layers_.size() - 1; i-- > backward_stop_;) gradient = &layers_[i]->backward(*gradient);
}

void Sequential::update_metrics(const Tensor& y, std::span<const float> sample_weight) {
  for (Shared<Metric>& metric : metrics_) metric->update_weighted(*training_prediction_, y, sample_weight);
}

bool Sequential::gradients_finite() const { return all_finite(parameter_gradients_); }

void Sequential::apply_gradients() {
  const DenormalsFlushedToZero flush_denormals;
  (*optimizer_)->apply(parameter_values_, parameter_gradients_);
}

std::string Sequential::non_finite_step_message(double loss_value) const {
  const std::string what = std::isfinite(loss_value) ? "a gradient was NaN or infinite (the loss was " + std::to_string(loss_value) + ")"
                                                     : "the loss was " + std::to_string(loss_value);
  return what + ", so the step was not applied and model '" + name_ +
         "' keeps its weights from before it. Check the data for NaN or infinite values, or try a lower learning rate";
}

double Sequential::train_on_batch(const Tensor& x, const Tensor& y) { return train_on_batch(x, y, Tensor()); }

double Sequential::train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight) {
  data::check_sample_weight(sample_weight, x.rows(), "train_on_batch");
  const StepResult step = train_step(x, y, sample_weight.values());
  if (!step.applied) throw ValueError("train_on_batch: " + non_finite_step_message(step.loss));
  return step.loss;
}

// ---- weights -------------------------------------------------------------------------------------

void Sequential::set_weights(std::span<const float> weights) {
  if (weights.size() != parameter_values_.size()) {
    throw ShapeError("model '" + name_ + "' has a parameter arena of " + std::to_string(parameter_values_.size()) +
                     " floats, got " + std::to_string(weights.size()));
  }
  std::copy(weights.begin(), weights.end(), parameter_values_.begin());
}

std::vector<io::NamedArray> Sequential::weight_arrays() const {
  std::vector<io::NamedArray> arrays;
  for (const Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      arrays.push_back({layer->name() + "/" + parameter->name, parameter->shape,
                        std::vector<float>(parameter->value, parameter->value + parameter->size())});
    }
  }
  return arrays;
}

void Sequential::save_weights(const std::string& path) {
  if (!build_if_input_shape_declared()) throw Error("model '" + name_ + "' has no weights to save yet: build or fit it first");
  io::write_npz(path, weight_arrays());
}

void Sequential::load_weights(const std::string& path) {
  if (!build_if_input_shape_declared()) {
    throw Error("model '" + name_ + "' must be built before loading weights into it: give the first layer an input "
                "shape, or call build(input_shape)");
  }
  load_weight_arrays([&](const io::ArrayCheck& check) { return io::read_npz(path, check); }, path);
}

void Sequential::load_weight_arrays(const WeightReader& read, const std::string& source) {
  std::map<std::string, const Parameter*> expected;
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) expected.emplace(layer->name() + "/" + parameter->name, parameter);
  }
  // Names and shapes are checked as the file's directory is read, before any array is inflated:
  // a file for another model is refused at the cost of its own bytes.
  const auto check = [&](const std::string& key, const Shape& shape) {
    auto found = expected.find(key);
    if (found == expected.end()) {
      throw FileError(source + " holds an array '" + key + "' that the model '" + name_ + "' does not have");
    }
    if (!(shape == found->second->shape)) {
      throw ShapeError(source + ": '" + key + "' has shape " + shape.str() + " but the model's is " +
                       found->second->shape.str());
    }
  };
  std::map<std::string, io::NamedArray> arrays;
  for (io::NamedArray& array : read(check)) arrays.emplace(array.name, std::move(array));
  for (Shared<Layer>& layer : layers_) {  // in the model's order, so the first one missing is named
    for (Parameter* parameter : layer->parameters()) {
      const std::string key = layer->name() + "/" + parameter->name;
      if (!arrays.contains(key)) throw FileError(source + " has no array '" + key + "' for model '" + name_ + "'");
    }
  }
  // Everything checked: only now overwrite, so a bad file leaves the model as it was.
  for (const auto& [key, parameter] : expected) {
    const io::NamedArray& array = arrays.at(key);
    std::copy(array.values.begin(), array.values.end(), parameter->value);
  }
}

}  // namespace kiln
