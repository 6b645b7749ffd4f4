// .kiln model files (model_file.hpp): Sequential::save, load_model and restore_model.
//
// Reading checks everything before it changes anything: the archive and its JSON first, then the
// architecture against the model's, then every array's name and shape (before its data is read),
// and only then are the weights, the optimizer's state and the layers' random states put in.
#include "kiln/model_file.hpp"

#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/io/zip.hpp"
#include "model_config.hpp"

#include <map>
#include <optional>
#include <set>

namespace kiln {
namespace {

using model_config::Json;

constexpr const char* kFormat = "kiln.model";
constexpr int kFormatVersion = 1;
constexpr const char* kConfigEntry = "config.json";
constexpr const char* kMetadataEntry = "metadata.json";
constexpr const char* kWeightsEntry = "model.weights.npz";
constexpr const char* kOptimizerEntry = "optimizer.npz";
// config.json and metadata.json of any real model are kilobytes; more is a damaged or hostile file.
constexpr uint32_t kMaxJsonBytes = 16u << 20;

// Every parameter of a built model: its "<layer>/<parameter>" name, and where it lies in the arena.
struct ParameterPlace {
  Shape shape;
  size_t offset = 0;
};

std::map<std::string, ParameterPlace> parameter_places(Sequential& model) {
  std::map<std::string, ParameterPlace> places;
  const float* arena = model.parameter_values().data();
  for (size_t index = 0; index < model.layer_count(); ++index) {
    Layer& layer = model.layer(index);
    for (Parameter* parameter : layer.parameters()) {
      places[layer.name() + "/" + parameter->name] = {parameter->shape, static_cast<size_t>(parameter->value - arena)};
    }
  }
  return places;
}

std::span<const unsigned char> as_bytes(const std::string& text) {
  return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

// ---- writing ---------------------------------------------------------------------------------------

Json model_json(Sequential& model) {
  Json layers = Json::array();
  for (size_t index = 0; index < model.layer_count(); ++index) layers.push_back(model_config::layer_config(model.layer(index)));
  Json input_shape = Json::array({nullptr});  // Keras's batch axis: any size
  for (int axis = 0; axis < model.input_shape().rank(); ++axis) input_shape.push_back(model.input_shape()[axis]);

  Json json;
  json["class_name"] = "Sequential";
  json["config"] = {{"name", model.name()}, {"layers", std::move(layers)}};
  json["build_config"] = {{"input_shape", std::move(input_shape)}};
  if (model.compiled()) {
    Json metrics = Json::array();
    for (const Shared<Metric>& metric : model.metrics()) metrics.push_back(model_config::metric_config(*metric));
    json["compile_config"] = {{"optimizer", model_config::optimizer_config(model.optimizer())},
                              {"loss", model_config::loss_config(model.loss())},
                              {"metrics", std::move(metrics)}};
  }
  return json;
}

Json metadata_json(Sequential& model) {
  Json layer_states = Json::object();
  for (size_t index = 0; index < model.layer_count(); ++index) {
    const Layer& layer = model.layer(index);
    const std::map<std::string, uint64_t> state = layer.random_state();
    if (!state.empty()) layer_states[layer.name()] = state;
  }
  Json json;
  json["format"] = kFormat;
  json["format_version"] = kFormatVersion;
  json["epochs_completed"] = model.epochs_completed();
  if (model.compiled()) json["optimizer"] = {{"iterations", model.optimizer().iterations()}};
  json["layer_random_states"] = std::move(layer_states);
  return json;
}

// Each slot cut into one array per parameter, named "<slot>/<layer>/<parameter>".
std::vector<io::NamedArray> optimizer_arrays(Sequential& model) {
  std::vector<io::NamedArray> arrays;
  if (!model.compiled()) return arrays;
  const std::map<std::string, ParameterPlace> places = parameter_places(model);
  for (const Optimizer::SlotValues& slot : model.optimizer().slots()) {
    if (slot.values.empty()) continue;  // before the first step
    for (const auto& [name, place] : places) {
      const auto first = slot.values.begin() + static_cast<std::ptrdiff_t>(place.offset);
      arrays.push_back({slot.name + "/" + name, place.shape, {first, first + place.shape.element_count()}});
    }
  }
  return arrays;
}

}  // namespace

void Sequential::save(const std::string& path) {
  if (!build_if_input_shape_declared()) throw Error("model '" + name_ + "' cannot be saved yet: build or fit it first");
  const std::string config = model_json(*this).dump(2) + "\n";
  const std::string metadata = metadata_json(*this).dump(2) + "\n";
  const std::vector<unsigned char> weights = io::npz_bytes(weight_arrays(), path + " (" + kWeightsEntry + ")");
  const std::vector<unsigned char> slots = io::npz_bytes(optimizer_arrays(*this), path + " (" + kOptimizerEntry + ")");
  const std::vector<io::ZipEntryToWrite> entries = {
      {kConfigEntry, {as_bytes(config)}},
      {kMetadataEntry, {as_bytes(metadata)}},
      {kWeightsEntry, {weights}},
      {kOptimizerEntry, {slots}},
  };
  io::AtomicFile file(path);
  io::write_zip(entries, [&](std::span<const unsigned char> bytes) { file.write(bytes.data(), bytes.size()); }, path);
  file.commit();
}

// ---- reading ---------------------------------------------------------------------------------------

namespace {

// A .kiln file opened: its bytes, its zip directory and its two JSON entries parsed and checked.
class ModelFile {
 public:
  explicit ModelFile(const std::string& path)
      : path_(path), bytes_(io::read_file_bytes(path, "model file")), zip_(bytes_, path, "model file") {
    for (const char* name : {kConfigEntry, kMetadataEntry, kWeightsEntry}) {
      if (!zip_.find(name)) {
        zip_.fail(std::string("it has no ") + name + ", so it is not a kiln model file (model.save writes them)");
      }
    }
    metadata_ = read_json(kMetadataEntry);
    if (!metadata_.is_object() || metadata_.value("format", "") != kFormat) {
      fail_in(kMetadataEntry, std::string("its format is not \"") + kFormat + "\", so this is not a kiln model file");
    }
    const Json version = metadata_.value("format_version", Json());
    if (!version.is_number_integer() || version.get<int64_t>() < 1) fail_in(kMetadataEntry, "it has no valid format_version");
    if (version.get<int64_t>() > kFormatVersion) {
      fail_in(kMetadataEntry, "it is format version " + version.dump() + ", from a newer kiln; this one reads version " +
                                  std::to_string(kFormatVersion));
    }
    config_ = read_json(kConfigEntry);
  }

  const std::string& path() const { return path_; }
  const Json& config() const { return config_; }
  const Json& metadata() const { return metadata_; }
  bool has(const char* entry_name) const { return zip_.find(entry_name) != nullptr; }

  // The arrays of an .npz entry, each checked by `check` before any is read.
  std::vector<io::NamedArray> arrays(const char* entry_name, const io::ArrayCheck& check) const {
    std::vector<unsigned char> storage;
    const std::span<const unsigned char> npz = zip_.contents(*zip_.find(entry_name), storage);
    return io::read_npz_bytes(npz, source(entry_name), check);
  }

  // "m.kiln (config.json)": how messages name an entry.
  std::string source(const char* entry_name) const { return path_ + " (" + entry_name + ")"; }

  [[noreturn]] void fail_in(const char* entry_name, const std::string& problem) const {
    throw FileError("cannot read model file " + source(entry_name) + ": " + problem);
  }

 private:
  Json read_json(const char* entry_name) const {
    const io::ZipReader::Entry& entry = *zip_.find(entry_name);
    if (entry.uncompressed_size > kMaxJsonBytes) {
      zip_.fail_entry(entry, "it is " + std::to_string(entry.uncompressed_size) + " bytes; kiln reads up to " +
                                 std::to_string(kMaxJsonBytes) + " bytes of JSON");
    }
    std::vector<unsigned char> storage;
    const std::span<const unsigned char> text = zip_.contents(entry, storage);
    try {
      return Json::parse(text.begin(), text.end());
    } catch (const Json::exception& error) {
      zip_.fail_entry(entry, std::string("it is not valid JSON: ") + error.what());
    }
  }

  std::string path_;
  std::vector<unsigned char> bytes_;
  io::ZipReader zip_;
  Json config_, metadata_;
};

// Runs `step`, turning a ValueError or ShapeError (from the configs) into a FileError saying where.
template <class Step>
auto in_config(const ModelFile& file, const std::string& where, const Step& step) {
  try {
    return step();
  } catch (const Json::exception& error) {
    file.fail_in(kConfigEntry, where + ": " + error.what());
  } catch (const ValueError& error) {
    file.fail_in(kConfigEntry, where + ": " + error.what());
  } catch (const ShapeError& error) {
    file.fail_in(kConfigEntry, where + ": " + error.what());
  }
}

// Runs all of reading `file`: a JSON value of the wrong type anywhere (a number where a name
// should be, a list where an object should be), which the checks along the way did not foresee,
// becomes a FileError naming the file instead of escaping as a JSON library exception.
template <class Body>
auto reading(const ModelFile& file, const Body& body) {
  try {
    return body();
  } catch (const Json::exception& error) {
    throw FileError("cannot read model file " + file.path() + ": its JSON does not have the form kiln writes (" + error.what() + ")");
  }
}

// The model's own config: {"name", "layers"}.
Json sequential_config(const ModelFile& file) {
  const Json& config = file.config();
  if (!config.is_object() || config.value("class_name", "") != "Sequential") {
    file.fail_in(kConfigEntry, "its model is not a Sequential, the only model kiln has");
  }
  Json sequential = config.value("config", Json());
  if (!sequential.is_object() || !sequential.value("layers", Json()).is_array() || sequential["layers"].empty()) {
    file.fail_in(kConfigEntry, "it has no list of layers");
  }
  return sequential;
}

Shape input_shape(const ModelFile& file) {
  const Json& shape = file.config().value("build_config", Json::object()).value("input_shape", Json());
  if (!shape.is_array() || shape.size() < 2 || shape.size() > static_cast<size_t>(Shape::kMaxRank) + 1 ||
      !shape[0].is_null()) {
    file.fail_in(kConfigEntry, "its build_config has no input_shape like [null, 28, 28]");
  }
  std::vector<int64_t> dims;
  for (size_t axis = 1; axis < shape.size(); ++axis) {
    if (!shape[axis].is_number_integer() || shape[axis].get<int64_t>() <= 0 || shape[axis].get<int64_t>() > (1 << 30)) {
      file.fail_in(kConfigEntry, "its input_shape " + shape.dump() + " is not a list of positive sizes after null");
    }
    dims.push_back(shape[axis].get<int64_t>());
  }
  return Shape(std::span<const int64_t>(dims));
}

std::string layer_where(size_t index, size_t count) {
  return "layer " + std::to_string(index + 1) + " of " + std::to_string(count);
}

// The file's model and `model` must have the same layers, in order, with the same configs.
void check_architecture(const ModelFile& file, Sequential& model) {
  const Json layers = sequential_config(file)["layers"];
  if (layers.size() != model.layer_count()) {
    throw FileError(file.path() + " holds a model of " + std::to_string(layers.size()) + " layers, but model '" +
                    model.name() + "' has " + std::to_string(model.layer_count()));
  }
  for (size_t index = 0; index < layers.size(); ++index) {
    const Json ours = model_config::layer_config(model.layer(index));
    if (layers[index] != ours) {
      throw FileError(file.path() + ": " + layer_where(index, layers.size()) + " is " + layers[index].dump() +
                      " in the file but " + ours.dump() + " in model '" + model.name() + "'");
    }
  }
  const Shape shape = input_shape(file);
  if (!(model.input_shape() == shape)) {
    throw FileError(file.path() + " holds a model for inputs of shape " + shape.str() + ", but model '" + model.name() +
                    "' takes " + model.input_shape().str());
  }
}

// What restoring puts into a model, read and checked in full before any of it is applied.
struct TrainingState {
  int epochs_completed = 0;
  std::optional<float> learning_rate;  // a fixed rate (ReduceLROnPlateau may have changed it)
  std::optional<int64_t> iterations;   // present when the file's model was compiled
  std::map<std::string, std::vector<float>> slots;
  std::map<std::string, std::map<std::string, uint64_t>> layer_random_states;
};

TrainingState read_training_state(const ModelFile& file, Sequential& model) {
  TrainingState state;
  const Json& metadata = file.metadata();
  const Json epochs = metadata.value("epochs_completed", Json(0));
  if (!epochs.is_number_integer() || epochs.get<int64_t>() < 0 || epochs.get<int64_t>() > (1 << 30)) {
    file.fail_in(kMetadataEntry, "its epochs_completed is " + epochs.dump() + ", not a count");
  }
  state.epochs_completed = static_cast<int>(epochs.get<int64_t>());

  const Json layer_states = metadata.value("layer_random_states", Json::object());
  if (!layer_states.is_object()) file.fail_in(kMetadataEntry, "its layer_random_states is not an object");
  for (const auto& [layer_name, saved] : layer_states.items()) {
    std::map<std::string, uint64_t> expected;
    try {
      expected = model.layer(layer_name).random_state();
    } catch (const ValueError&) {
      file.fail_in(kMetadataEntry, "it has a random state for layer '" + layer_name + "', which model '" +
                                       model.name() + "' does not have");
    }
    std::map<std::string, uint64_t> values;
    for (const auto& [key, unused] : expected) {
      if (!saved.is_object() || !saved.contains(key) || !saved[key].is_number_unsigned()) {
        file.fail_in(kMetadataEntry, "the random state of layer '" + layer_name + "' has no whole number '" + key + "'");
      }
      values[key] = saved[key].get<uint64_t>();
    }
    state.layer_random_states[layer_name] = std::move(values);
  }

  const Json compile_config = file.config().value("compile_config", Json());
  if (compile_config.is_null()) return state;
  if (!model.compiled()) {
    throw FileError(file.path() + " holds a compiled model's training state: compile model '" + model.name() +
                    "' before restoring it");
  }
  const Json saved_optimizer = compile_config.value("optimizer", Json());
  const Json our_optimizer = model_config::optimizer_config(model.optimizer());
  if (!saved_optimizer.is_object() || saved_optimizer.value("class_name", "") != our_optimizer["class_name"]) {
    throw FileError(file.path() + " holds the state of a " + saved_optimizer.value("class_name", std::string("?")) +
                    " optimizer, but model '" + model.name() + "' is compiled with " +
                    our_optimizer["class_name"].get<std::string>());
  }
  const Json saved_rate = saved_optimizer.value("config", Json::object()).value("learning_rate", Json());
  if (saved_rate.is_number() && !model.optimizer().has_schedule()) state.learning_rate = saved_rate.get<float>();

  const Json iterations = metadata.value("optimizer", Json::object()).value("iterations", Json());
  if (!iterations.is_number_unsigned()) file.fail_in(kMetadataEntry, "it has no optimizer iterations count");
  state.iterations = iterations.get<int64_t>();

  if (!file.has(kOptimizerEntry)) return state;
  std::set<std::string> slot_names;
  for (const Optimizer::SlotValues& slot : model.optimizer().slots()) slot_names.insert(slot.name);
  const std::map<std::string, ParameterPlace> places = parameter_places(model);
  const auto check = [&](const std::string& name, const Shape& shape) {
    const size_t slash = name.find('/');
    const std::string slot = name.substr(0, slash), parameter = slash == std::string::npos ? "" : name.substr(slash + 1);
    if (!slot_names.contains(slot) || !places.contains(parameter)) {
      throw FileError(file.source(kOptimizerEntry) + " holds an array '" + name + "' that " +
                      model.optimizer().name() + " on model '" + model.name() + "' does not have");
    }
    if (!(places.at(parameter).shape == shape)) {
      throw ShapeError(file.source(kOptimizerEntry) + ": '" + name + "' has shape " + shape.str() +
                       " but the parameter's is " + places.at(parameter).shape.str());
    }
  };
  std::map<std::string, int64_t> arrays_per_slot;
  for (const io::NamedArray& array : file.arrays(kOptimizerEntry, check)) {
    const size_t slash = array.name.find('/');
    const std::string slot = array.name.substr(0, slash);
    std::vector<float>& values = state.slots[slot];
    values.resize(model.parameter_values().size(), 0.0f);
    std::copy(array.values.begin(), array.values.end(),
              values.begin() + static_cast<std::ptrdiff_t>(places.at(array.name.substr(slash + 1)).offset));
    ++arrays_per_slot[slot];
  }
  for (const auto& [slot, count] : arrays_per_slot) {
    if (count != static_cast<int64_t>(places.size())) {
      throw FileError(file.source(kOptimizerEntry) + " has '" + slot + "' for " + std::to_string(count) + " of the " +
                      std::to_string(places.size()) + " parameters of model '" + model.name() + "'");
    }
  }
  return state;
}

// Checks the file against the model, then puts its state in.
void restore_from(const ModelFile& file, Sequential& model) {
  check_architecture(file, model);
  TrainingState state = read_training_state(file, model);
  model.load_weight_arrays([&](const io::ArrayCheck& check) { return file.arrays(kWeightsEntry, check); },
                           file.source(kWeightsEntry));
  // Nothing below can fail: every value was checked above.
  if (state.iterations) model.optimizer().restore(*state.iterations, state.slots);
  if (state.learning_rate) model.optimizer().set_learning_rate(*state.learning_rate);
  for (const auto& [layer_name, random_state] : state.layer_random_states) {
    model.layer(layer_name).set_random_state(random_state);
  }
  model.set_epochs_completed(state.epochs_completed);
}

}  // namespace

Sequential load_model(const std::string& path) {
  const ModelFile file(path);
  return reading(file, [&] {
    const Json config = sequential_config(file);
    const Json& layers = config["layers"];
    Sequential model({}, in_config(file, "the model's name", [&] { return config.at("name").get<std::string>(); }));
    for (size_t index = 0; index < layers.size(); ++index) {
      in_config(file, layer_where(index, layers.size()), [&] { model.add(model_config::layer_from_config(layers[index])); });
    }
    const Shape shape = input_shape(file);
    in_config(file, "building for inputs of shape " + shape.str(), [&] { model.build(shape); });
    const Json compile_config = file.config().value("compile_config", Json());
    if (!compile_config.is_null()) {
      in_config(file, "compile_config", [&] {
        std::vector<Shared<Metric>> metrics;
        for (const Json& metric : compile_config.value("metrics", Json::array())) {
          metrics.push_back(model_config::metric_from_config(metric));
        }
        model.compile(model_config::optimizer_from_config(compile_config.at("optimizer")),
                      model_config::loss_from_config(compile_config.at("loss")), std::move(metrics));
      });
    }
    restore_from(file, model);
    return model;
  });
}

void restore_model(Sequential& model, const std::string& path) {
  const ModelFile file(path);
  reading(file, [&] {
    if (!model.built()) model.build(input_shape(file));
    restore_from(file, model);
  });
}

}  // namespace kiln
