// Fuzzes load_model: any bytes give a model holding as many weights as its layers count, or a
// kiln::Error, nothing else. Each input is tried twice: as a whole .kiln file (the zip container
// and its entries), and as the config.json of an otherwise valid file, since a mutation inside a
// whole file rarely gets past the entry's CRC-32 to the JSON and the layers built from it.
#include "fuzz_input_file.hpp"

#include <kiln/error.hpp>
#include <kiln/io/zip.hpp>
#include <kiln/kiln.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace {

// A small compiled model's file, made once: its entries other than config.json go with every
// fuzzed config.
struct ValidFile {
  ValidFile() {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("kiln-fuzz-model-" + std::to_string(::getpid()) + ".kiln")).string();
    kiln::set_random_seed(1);
    kiln::Sequential model({kiln::layers::Flatten({2, 2}), kiln::layers::Dense(3, kiln::Activation::ReLU),
                            kiln::layers::Dropout(0.2f), kiln::layers::Dense(2, kiln::Activation::Softmax)});
    model.compile(kiln::optimizers::Adam(), kiln::losses::SparseCategoricalCrossentropy(), {kiln::metrics::Accuracy()});
    model.build(kiln::Shape{2, 2});
    model.save(path);
    bytes = kiln::io::read_file_bytes(path, "model file");
    const kiln::io::ZipReader zip(bytes, path, "model file");
    for (const char* name : {"metadata.json", "model.weights.npz", "optimizer.npz"}) {
      std::vector<unsigned char> storage;
      const std::span<const unsigned char> contents = zip.contents(*zip.find(name), storage);
      others.push_back({name, std::vector<unsigned char>(contents.begin(), contents.end())});
    }
    std::filesystem::remove(path);
  }
  std::vector<unsigned char> bytes;  // the whole file, which the entries below view
  std::vector<std::pair<std::string, std::vector<unsigned char>>> others;
};

void load(const std::string& path) {
  try {
    const kiln::Sequential model = kiln::load_model(path);
    int64_t weights = 0;
    for (const kiln::io::NamedArray& array : model.weight_arrays()) weights += static_cast<int64_t>(array.values.size());
    if (weights != model.parameter_count()) __builtin_trap();
  } catch (const kiln::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::InputFile file;
  static const ValidFile valid;
  load(file.hold(data, size));

  std::vector<kiln::io::ZipEntryToWrite> entries{{"config.json", {std::span<const unsigned char>(data, size)}}};
  for (const auto& [name, contents] : valid.others) entries.push_back({name, {contents}});
  std::vector<unsigned char> archive;
  kiln::io::write_zip(entries, [&](std::span<const unsigned char> bytes) { archive.insert(archive.end(), bytes.begin(), bytes.end()); },
                      "fuzzed config");
  load(file.hold(archive.data(), archive.size()));
  return 0;
}
