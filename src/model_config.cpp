// Keras-style configs: each kiln class written as {"class_name", "config"} and built back from it.
#include "model_config.hpp"

#include "kiln/error.hpp"
#include "kiln/layers/activation_layer.hpp"
#include "kiln/layers/batch_normalization.hpp"
#include "kiln/layers/conv2d.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/dropout.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/layers/pooling2d.hpp"
#include "kiln/layers/rescaling.hpp"
#include "kiln/layers/reshape.hpp"
#include "kiln/schedules.hpp"

#include <charconv>
#include <cmath>
#include <memory>

namespace kiln::model_config {

double json_float(float value) {
  char text[32];
  auto [end, error] = std::to_chars(text, text + sizeof text, value);  // shortest round trip
  double result = value;
  if (error == std::errc{}) std::from_chars(text, end, result);
  return result;
}

namespace {

Json object(const std::string& class_name, Json config) {
  Json json;
  json["class_name"] = class_name;
  json["config"] = std::move(config);
  return json;
}

// ---- reading arguments ---------------------------------------------------------------------------

const Json& field(const Json& config, const std::string& key) {
  auto found = config.find(key);
  if (found == config.end()) throw ValueError("its config has no '" + key + "'");
  return *found;
}

double number(const Json& config, const std::string& key) {
  const Json& value = field(config, key);
  if (!value.is_number()) throw ValueError("its '" + key + "' is " + value.dump() + ", not a number");
  return value.get<double>();
}

double number_or(const Json& config, const std::string& key, double fallback) {
  return config.contains(key) && !config[key].is_null() ? number(config, key) : fallback;
}

float finite_float(const Json& config, const std::string& key) {
  const double value = number(config, key);
  if (!std::isfinite(value)) throw ValueError("its '" + key + "' is not finite");
  return static_cast<float>(value);
}

int64_t integer(const Json& config, const std::string& key) {
  const Json& value = field(config, key);
  if (!value.is_number_integer()) throw ValueError("its '" + key + "' is " + value.dump() + ", not an integer");
  return value.get<int64_t>();
}

bool boolean_or(const Json& config, const std::string& key, bool fallback) {
  if (!config.contains(key)) return fallback;
  const Json& value = config[key];
  if (!value.is_boolean()) throw ValueError("its '" + key + "' is " + value.dump() + ", not true or false");
  return value.get<bool>();
}

std::string text(const Json& config, const std::string& key) {
  const Json& value = field(config, key);
  if (!value.is_string()) throw ValueError("its '" + key + "' is " + value.dump() + ", not a string");
  return value.get<std::string>();
}

// Keras writes a kernel_size, strides or pool_size as a pair [height, width].
Json pair(const layers::Size2D& size) { return Json::array({size.height, size.width}); }

layers::Size2D size_2d(const Json& config, const std::string& key) {
  const Json& value = field(config, key);
  if (value.is_number_integer()) return layers::Size2D(value.get<int64_t>());
  if (!value.is_array() || value.size() != 2 || !value[0].is_number_integer() || !value[1].is_number_integer()) {
    throw ValueError("its '" + key + "' is " + value.dump() + ", not a pair of integers");
  }
  return {value[0].get<int64_t>(), value[1].get<int64_t>()};
}

void check_channels_last(const Json& config) {
  if (config.contains("data_format") && !config["data_format"].is_null() && config["data_format"] != "channels_last") {
    throw ValueError("its data_format is " + config["data_format"].dump() + "; kiln's images are channels_last");
  }
}

// The class name and config of a {"class_name", "config"} object.
std::pair<std::string, const Json*> split(const Json& json) {
  if (!json.is_object()) throw ValueError(json.dump() + " is not a {\"class_name\", \"config\"} object");
  const std::string class_name = text(json, "class_name");
  const Json& config = field(json, "config");
  if (!config.is_object()) throw ValueError("the config of '" + class_name + "' is not an object");
  return {class_name, &config};
}

template <class T>
std::shared_ptr<T> named(std::shared_ptr<T> object, const Json& config) {
  if (config.contains("name")) object->set_name(text(config, "name"));
  return object;
}

}  // namespace

// ---- layers ----------------------------------------------------------------------------------------

Json layer_config(const Layer& layer) {
  Json config;
  config["name"] = layer.name();
  if (const auto* dense = dynamic_cast<const layers::Dense*>(&layer)) {
    config["units"] = dense->units();
    config["activation"] = std::string{activation_name(dense->activation())};
    config["use_bias"] = true;
    return object("Dense", std::move(config));
  }
  if (const auto* dropout = dynamic_cast<const layers::Dropout*>(&layer)) {
    config["rate"] = json_float(dropout->rate());
    config["seed"] = nullptr;  // the layer's seed is random state, saved beside the weights
    return object("Dropout", std::move(config));
  }
  if (dynamic_cast<const layers::Flatten*>(&layer)) {
    config["data_format"] = "channels_last";
    return object("Flatten", std::move(config));
  }
  if (const auto* conv = dynamic_cast<const layers::Conv2D*>(&layer)) {
    config["filters"] = conv->filters();
    config["kernel_size"] = pair(conv->kernel_size());
    config["strides"] = pair(conv->strides());
    config["padding"] = std::string{layers::padding_name(conv->padding())};
    config["data_format"] = "channels_last";
    config["dilation_rate"] = Json::array({1, 1});
    config["groups"] = 1;
    config["activation"] = std::string{activation_name(conv->activation())};
    config["use_bias"] = conv->use_bias();
    return object("Conv2D", std::move(config));
  }
  if (const auto* pooling = dynamic_cast<const layers::WindowPooling2D*>(&layer)) {
    config["pool_size"] = pair(pooling->pool_size());
    config["strides"] = pair(pooling->strides());
    config["padding"] = std::string{layers::padding_name(pooling->padding())};
    config["data_format"] = "channels_last";
    return object(layer.type_name(), std::move(config));
  }
  if (dynamic_cast<const layers::GlobalAveragePooling2D*>(&layer)) {
    config["data_format"] = "channels_last";
    config["keepdims"] = false;
    return object("GlobalAveragePooling2D", std::move(config));
  }
  if (const auto* normalization = dynamic_cast<const layers::BatchNormalization*>(&layer)) {
    config["axis"] = -1;
    config["momentum"] = json_float(normalization->momentum());
    config["epsilon"] = json_float(normalization->epsilon());
    config["center"] = true;
    config["scale"] = true;
    return object("BatchNormalization", std::move(config));
  }
  if (const auto* reshape = dynamic_cast<const layers::Reshape*>(&layer)) {
    config["target_shape"] = reshape->target_shape();
    return object("Reshape", std::move(config));
  }
  if (const auto* rescaling = dynamic_cast<const layers::Rescaling*>(&layer)) {
    config["scale"] = json_float(rescaling->scale());
    config["offset"] = json_float(rescaling->offset());
    return object("Rescaling", std::move(config));
  }
  if (const auto* activation = dynamic_cast<const layers::ActivationLayer*>(&layer)) {
    config["activation"] = std::string{activation_name(activation->output_activation())};
    return object("Activation", std::move(config));
  }
  throw ValueError("layer '" + layer.name() + "' of type " + layer.type_name() +
                   " cannot be saved in a model file: kiln writes its own layer types (Dense, Conv2D, pooling, "
                   "BatchNormalization, Dropout, Flatten, Reshape, Rescaling, Activation); save a model of your own layers with "
                   "save_weights()");
}

Shared<Layer> layer_from_config(const Json& json) {
  const auto [class_name, config_pointer] = split(json);
  const Json& config = *config_pointer;
  if (class_name == "Dense") {
    if (!boolean_or(config, "use_bias", true)) throw ValueError("Dense with use_bias false is not one kiln has");
    const int64_t units = integer(config, "units");
    if (units <= 0) throw ValueError("its 'units' is " + std::to_string(units) + "; it must be positive");
    return named(std::make_shared<layers::Dense>(units, activation_from_name(text(config, "activation"))), config);
  }
  if (class_name == "Dropout") return named(std::make_shared<layers::Dropout>(finite_float(config, "rate")), config);
  if (class_name == "Flatten") {
    check_channels_last(config);
    return named(std::make_shared<layers::Flatten>(), config);
  }
  if (class_name == "Conv2D") {
    check_channels_last(config);
    const layers::Size2D dilation = config.contains("dilation_rate") ? size_2d(config, "dilation_rate") : layers::Size2D(1);
    if (!(dilation == layers::Size2D(1)) || number_or(config, "groups", 1) != 1) {
      throw ValueError("Conv2D with dilation_rate or groups other than 1 is not one kiln has");
    }
    const int64_t filters = integer(config, "filters");
    if (filters <= 0) throw ValueError("its 'filters' is " + std::to_string(filters) + "; it must be positive");
    const layers::Conv2DOptions options{.strides = size_2d(config, "strides"),
                                        .padding = layers::padding_from_name(text(config, "padding")),
                                        .activation = activation_from_name(text(config, "activation")),
                                        .use_bias = boolean_or(config, "use_bias", true)};
    return named(std::make_shared<layers::Conv2D>(filters, size_2d(config, "kernel_size"), options), config);
  }
  if (class_name == "MaxPooling2D" || class_name == "AveragePooling2D") {
    check_channels_last(config);
    const layers::Size2D pool_size = size_2d(config, "pool_size");
    const layers::Pooling2DOptions options{
        .strides = config.contains("strides") && !config["strides"].is_null() ? size_2d(config, "strides") : pool_size,
        .padding = layers::padding_from_name(text(config, "padding"))};
    if (class_name == "MaxPooling2D") return named(std::make_shared<layers::MaxPooling2D>(pool_size, options), config);
    return named(std::make_shared<layers::AveragePooling2D>(pool_size, options), config);
  }
  if (class_name == "GlobalAveragePooling2D") {
    check_channels_last(config);
    if (boolean_or(config, "keepdims", false)) throw ValueError("GlobalAveragePooling2D with keepdims true is not one kiln has");
    return named(std::make_shared<layers::GlobalAveragePooling2D>(), config);
  }
  if (class_name == "BatchNormalization") {
    if (config.contains("axis") && config["axis"] != -1 && config["axis"] != Json::array({-1})) {
      throw ValueError("BatchNormalization over axis " + config["axis"].dump() + " is not one kiln has (only -1)");
    }
    if (!boolean_or(config, "center", true) || !boolean_or(config, "scale", true)) {
      throw ValueError("BatchNormalization without center or scale is not one kiln has");
    }
    return named(std::make_shared<layers::BatchNormalization>(layers::BatchNormalizationOptions{
                     .momentum = static_cast<float>(number_or(config, "momentum", 0.99)),
                     .epsilon = static_cast<float>(number_or(config, "epsilon", 1e-3))}),
                 config);
  }
  if (class_name == "Reshape") {
    const Json& target = field(config, "target_shape");
    if (!target.is_array()) throw ValueError("its 'target_shape' is " + target.dump() + ", not a list");
    std::vector<int64_t> dims;
    for (const Json& dim : target) {
      if (!dim.is_number_integer()) throw ValueError("its 'target_shape' is " + target.dump() + ", not a list of integers");
      dims.push_back(dim.get<int64_t>());
    }
    return named(std::make_shared<layers::Reshape>(std::move(dims)), config);
  }
  if (class_name == "Rescaling") {
    return named(std::make_shared<layers::Rescaling>(finite_float(config, "scale"),
                                                     static_cast<float>(number_or(config, "offset", 0.0))),
                 config);
  }
  if (class_name == "Activation") {
    return named(std::make_shared<layers::ActivationLayer>(activation_from_name(text(config, "activation"))), config);
  }
  throw ValueError("its class_name '" + class_name +
                   "' is not a layer kiln has (Dense, Conv2D, MaxPooling2D, AveragePooling2D, "
                   "GlobalAveragePooling2D, BatchNormalization, Dropout, Flatten, Reshape, Rescaling, Activation)");
}

// ---- optimizers and their schedules ---------------------------------------------------------------

namespace {

Json learning_rate_config(const LearningRate& learning_rate) {
  const LearningRateSchedule* schedule = learning_rate.schedule();
  if (!schedule) return json_float(learning_rate.at(0));
  namespace s = optimizers::schedules;
  Json config;
  if (const auto* exponential = dynamic_cast<const s::ExponentialDecay*>(schedule)) {
    const s::ExponentialDecayOptions& options = exponential->options();
    config["initial_learning_rate"] = options.initial_learning_rate;
    config["decay_steps"] = options.decay_steps;
    config["decay_rate"] = options.decay_rate;
    config["staircase"] = options.staircase;
    return object("ExponentialDecay", std::move(config));
  }
  if (const auto* piecewise = dynamic_cast<const s::PiecewiseConstantDecay*>(schedule)) {
    config["boundaries"] = piecewise->boundaries();
    config["values"] = piecewise->values();
    return object("PiecewiseConstantDecay", std::move(config));
  }
  if (const auto* cosine = dynamic_cast<const s::CosineDecay*>(schedule)) {
    const s::CosineDecayOptions& options = cosine->options();
    config["initial_learning_rate"] = options.initial_learning_rate;
    config["decay_steps"] = options.decay_steps;
    config["alpha"] = options.alpha;
    config["warmup_target"] = options.warmup_target ? Json(*options.warmup_target) : Json(nullptr);
    config["warmup_steps"] = options.warmup_steps;
    return object("CosineDecay", std::move(config));
  }
  throw ValueError("the learning-rate schedule " + schedule->name() + " cannot be saved in a model file");
}

LearningRate learning_rate_from_config(const Json& json) {
  if (json.is_number()) return LearningRate(static_cast<float>(json.get<double>()));
  const auto [class_name, config_pointer] = split(json);
  const Json& config = *config_pointer;
  namespace s = optimizers::schedules;
  if (class_name == "ExponentialDecay") {
    return s::ExponentialDecay({.initial_learning_rate = number(config, "initial_learning_rate"),
                                .decay_steps = integer(config, "decay_steps"),
                                .decay_rate = number(config, "decay_rate"),
                                .staircase = boolean_or(config, "staircase", false)});
  }
  if (class_name == "PiecewiseConstantDecay") {
    const Json& boundaries = field(config, "boundaries");
    const Json& values = field(config, "values");
    if (!boundaries.is_array() || !values.is_array()) throw ValueError("its boundaries and values must be lists");
    std::vector<int64_t> boundary_steps;
    std::vector<double> rates;
    for (const Json& boundary : boundaries) {
      if (!boundary.is_number_integer()) throw ValueError("its boundaries must be integers");
      boundary_steps.push_back(boundary.get<int64_t>());
    }
    for (const Json& value : values) {
      if (!value.is_number()) throw ValueError("its values must be numbers");
      rates.push_back(value.get<double>());
    }
    return s::PiecewiseConstantDecay(std::move(boundary_steps), std::move(rates));
  }
  if (class_name == "CosineDecay") {
    s::CosineDecayOptions options{.initial_learning_rate = number(config, "initial_learning_rate"),
                                  .decay_steps = integer(config, "decay_steps"),
                                  .alpha = number_or(config, "alpha", 0.0)};
    if (config.contains("warmup_target") && !config["warmup_target"].is_null()) {
      options.warmup_target = number(config, "warmup_target");
    }
    if (config.contains("warmup_steps")) options.warmup_steps = integer(config, "warmup_steps");
    return s::CosineDecay(options);
  }
  throw ValueError("its learning-rate schedule '" + class_name +
                   "' is not one kiln has (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)");
}

}  // namespace

Json optimizer_config(const Optimizer& optimizer) {
  Json config;
  config["name"] = optimizer.name();
  config["learning_rate"] = learning_rate_config(optimizer.learning_rate_setting());
  if (const auto* adam = dynamic_cast<const optimizers::Adam*>(&optimizer)) {
    config["beta_1"] = json_float(adam->beta_1());
    config["beta_2"] = json_float(adam->beta_2());
    config["epsilon"] = json_float(adam->epsilon());
    config["amsgrad"] = false;
    return object("Adam", std::move(config));
  }
  if (const auto* sgd = dynamic_cast<const optimizers::SGD*>(&optimizer)) {
    config["momentum"] = json_float(sgd->momentum());
    config["nesterov"] = sgd->nesterov();
    return object("SGD", std::move(config));
  }
  throw ValueError("the optimizer " + optimizer.name() + " cannot be saved in a model file: kiln writes Adam and SGD");
}

Shared<Optimizer> optimizer_from_config(const Json& json) {
  const auto [class_name, config_pointer] = split(json);
  const Json& config = *config_pointer;
  LearningRate learning_rate = learning_rate_from_config(field(config, "learning_rate"));
  if (class_name == "Adam") {
    if (boolean_or(config, "amsgrad", false)) throw ValueError("Adam with amsgrad is not one kiln has");
    return std::make_shared<optimizers::Adam>(std::move(learning_rate), finite_float(config, "beta_1"),
                                              finite_float(config, "beta_2"), finite_float(config, "epsilon"));
  }
  if (class_name == "SGD") {
    return std::make_shared<optimizers::SGD>(std::move(learning_rate),
                                             static_cast<float>(number_or(config, "momentum", 0.0)),
                                             boolean_or(config, "nesterov", false));
  }
  throw ValueError("its optimizer '" + class_name + "' is not one kiln has (Adam, SGD)");
}

// ---- losses and metrics ----------------------------------------------------------------------------

Json loss_config(const Loss& loss) {
  Json config;
  config["name"] = std::string{loss.name()};
  if (const auto* sparse = dynamic_cast<const losses::SparseCategoricalCrossentropy*>(&loss)) {
    config["from_logits"] = sparse->from_logits();
    return object("SparseCategoricalCrossentropy", std::move(config));
  }
  if (const auto* categorical = dynamic_cast<const losses::CategoricalCrossentropy*>(&loss)) {
    config["from_logits"] = categorical->from_logits();
    return object("CategoricalCrossentropy", std::move(config));
  }
  if (const auto* binary = dynamic_cast<const losses::BinaryCrossentropy*>(&loss)) {
    config["from_logits"] = binary->from_logits();
    return object("BinaryCrossentropy", std::move(config));
  }
  if (dynamic_cast<const losses::MeanSquaredError*>(&loss)) return object("MeanSquaredError", std::move(config));
  throw ValueError("the loss " + std::string{loss.name()} + " cannot be saved in a model file");
}

Shared<Loss> loss_from_config(const Json& json) {
  const auto [class_name, config_pointer] = split(json);
  const bool from_logits = boolean_or(*config_pointer, "from_logits", false);
  if (class_name == "SparseCategoricalCrossentropy") {
    return std::make_shared<losses::SparseCategoricalCrossentropy>(from_logits);
  }
  if (class_name == "CategoricalCrossentropy") return std::make_shared<losses::CategoricalCrossentropy>(from_logits);
  if (class_name == "BinaryCrossentropy") return std::make_shared<losses::BinaryCrossentropy>(from_logits);
  if (class_name == "MeanSquaredError") return std::make_shared<losses::MeanSquaredError>();
  throw ValueError("its loss '" + class_name +
                   "' is not one kiln has (SparseCategoricalCrossentropy, CategoricalCrossentropy, "
                   "BinaryCrossentropy, MeanSquaredError)");
}

Json metric_config(const Metric& metric) {
  const auto* accuracy = dynamic_cast<const metrics::Accuracy*>(&metric);
  if (!accuracy) throw ValueError("the metric " + metric.name() + " cannot be saved in a model file");
  switch (accuracy->kind()) {
    case metrics::Accuracy::Kind::Automatic: return "accuracy";  // Keras's string, resolved from the shapes
    case metrics::Accuracy::Kind::Sparse: return object("SparseCategoricalAccuracy", {{"name", "accuracy"}});
    case metrics::Accuracy::Kind::Categorical: return object("CategoricalAccuracy", {{"name", "accuracy"}});
    case metrics::Accuracy::Kind::Binary:
      return object("BinaryAccuracy", {{"name", "accuracy"}, {"threshold", json_float(accuracy->binary_threshold())}});
  }
  throw ValueError("the metric " + metric.name() + " cannot be saved in a model file");
}

Shared<Metric> metric_from_config(const Json& json) {
  if (json.is_string() && (json == "accuracy" || json == "acc")) return metrics::Accuracy();
  if (json.is_string()) throw ValueError("its metric '" + json.get<std::string>() + "' is not one kiln has");
  const auto [class_name, config_pointer] = split(json);
  if (class_name == "SparseCategoricalAccuracy") return metrics::SparseCategoricalAccuracy();
  if (class_name == "CategoricalAccuracy") return metrics::CategoricalAccuracy();
  if (class_name == "BinaryAccuracy") {
    return metrics::BinaryAccuracy(static_cast<float>(number_or(*config_pointer, "threshold", 0.5)));
  }
  throw ValueError("its metric '" + class_name +
                   "' is not one kiln has (accuracy, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy)");
}

}  // namespace kiln::model_config
