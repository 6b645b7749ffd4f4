// kiln-bench-images — what image_dataset_from_directory's pipeline costs and how much of it the
// pipeline's threads hide, on a folder of PNG files.
//
// The folder: --data DIR (one subfolder per class), or by default the first --images training
// images of Fashion-MNIST written as 28x28 grey PNGs into a temporary folder (removed at the end).
// Figures, each the median of --repeats runs after one untimed pass that brings the files into the
// page cache (so they measure decoding, not the disk):
//   decode   images/s of one epoch of the pipeline alone (read_file, decode_image, resize, batch 32),
//            iterated without training, with the decoding map on 1 thread (num_parallel_calls 1,
//            on the consumer's thread) and on 2 worker threads (num_parallel_calls 2).
//   epoch    seconds per training epoch of kiln-images' model (Rescaling, Flatten, Dense 128 relu,
//            Dropout 0.2, Dense softmax; Adam), and the share of it spent waiting for input, for
//            three pipelines: decoding serial without prefetch (everything on the training thread),
//            decoding in a parallel map (AUTOTUNE) without prefetch, and the default
//            (parallel map and prefetch(AUTOTUNE)). --threads sets the model's threads: on a
//            2-core machine, 1 leaves a core to the decoding.
// The PyTorch peer, bench/peers/torch_images.py, then decodes the same folder with its DataLoader
// (Pillow, 0, 1 and 2 worker processes) and trains the same model on it; the table ends with kiln's
// default set-up against PyTorch's best. --no-peer skips it.
// --json PATH writes the same figures as JSON.
#include "../common/median.hpp"
#include "../common/torch_peer.hpp"
#include "../../apps/common/arguments.hpp"
#include "../../apps/common/run_app.hpp"

#include <kiln/kiln.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace kiln;
namespace fs = std::filesystem;

constexpr const char* kProgram = "kiln-bench-images";
constexpr int64_t kBatchSize = 32;
constexpr uint64_t kSeed = 1;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

using bench::median;

// The first `count` Fashion-MNIST training images as DIR/<label>/<index>.png.
void write_png_folder(const std::string& dir, int64_t count) {
  const datasets::IdxArray images = datasets::read_idx(datasets::find_idx_file(datasets::kFashionMnistDir, "train-images-idx3-ubyte"));
  const datasets::IdxArray labels = datasets::read_idx(datasets::find_idx_file(datasets::kFashionMnistDir, "train-labels-idx1-ubyte"));
  const int64_t height = images.shape[1], width = images.shape[2];
  count = std::min(count, images.shape[0]);
  for (int label = 0; label < 10; ++label) fs::create_directories(fs::path(dir) / std::to_string(label));
  Tensor picture(Shape{height, width, 1});
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < height * width; ++p) picture[p] = images.bytes[static_cast<size_t>(i * height * width + p)];
    image::save_image((fs::path(dir) / std::to_string(labels.bytes[static_cast<size_t>(i)]) / (std::to_string(i) + ".png")).string(),
                      picture);
  }
}

image::ImageDirectoryOptions pipeline_options(image::ImageSize size, image::ColorMode color_mode, int64_t parallel, bool prefetch) {
  return {.color_mode = color_mode, .batch_size = kBatchSize, .image_size = size, .seed = kSeed, .verbose = false,
          .num_parallel_calls = parallel, .prefetch = prefetch};
}

// Images per second of one epoch of the pipeline alone.
double decode_rate(const std::string& dir, const image::ImageDirectoryOptions& options, int repeats) {
  const image::ImageDatasets found = image::image_dataset_from_directory(dir, options);
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (const LabeledData& batch : found.dataset) images += batch.x.rows();
    rates.push_back(static_cast<double>(images) / seconds_since(start));
  }
  return median(rates);
}

struct EpochFigures {
  double seconds = 0.0;     // median epoch time
  double input_wait = 0.0;  // median share of the epoch spent waiting for the next batch
};

EpochFigures train_epochs(const std::string& dir, const image::ImageDirectoryOptions& options, int epochs) {
  set_random_seed(kSeed);
  const image::ImageDatasets found = image::image_dataset_from_directory(dir, options);
  const int64_t channels = image::channels_of(options.color_mode);
  Sequential model({
      layers::Rescaling(1.0f / 255.0f, 0.0f, Shape{options.image_size.height, options.image_size.width, channels}),
      layers::Flatten(),
      layers::Dense(128, Activation::ReLU),
      layers::Dropout(0.2f),
      layers::Dense(static_cast<int64_t>(found.class_names.size()), Activation::Softmax),
  });
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const History history = model.fit(found.dataset, {.epochs = epochs, .verbose = 0});
  return {median(history.epoch_seconds), median(history.history.at("input_wait"))};
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = 0.0;
  in >> load;
  return load;
}

int run(int argc, char** argv) {
  apps::Arguments arguments(kProgram,
                            "Measures image_dataset_from_directory on a folder of PNG files: decoding throughput with 1 and 2\n"
                            "threads, and training epoch time with and without parallel decoding and prefetch; then\n"
                            "PyTorch's DataLoader on the same folder.");
  arguments.add_option("data", "DIR", "", "an image folder (one subfolder per class); default: Fashion-MNIST PNGs written to a temporary folder");
  arguments.add_option("images", "N", "10000", "how many Fashion-MNIST images the default folder holds");
  arguments.add_option("image-size", "N", "28", "images are resized to NxN");
  arguments.add_option("color-mode", "MODE", "grayscale", "grayscale, rgb or rgba");
  arguments.add_option("epochs", "N", "3", "training epochs per pipeline set-up (the median is reported)");
  arguments.add_option("repeats", "N", "3", "timed passes per decoding figure (the median is reported)");
  arguments.add_option("threads", "N", "all cores", "threads for the model's math");
  arguments.add_option("json", "PATH", "", "also write the figures as JSON to PATH");
  arguments.add_switch("no-peer", "skip the PyTorch peer (bench/peers/torch_images.py)");
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed
  if (arguments.has("threads")) set_num_threads(static_cast<int>(arguments.integer("threads")));
  const int epochs = static_cast<int>(arguments.integer("epochs"));
  const int repeats = static_cast<int>(arguments.integer("repeats"));
  const int64_t side = arguments.integer("image-size");
  if (epochs < 1 || repeats < 1 || side < 1) throw apps::ArgumentError("--epochs, --repeats and --image-size must be at least 1");
  const image::ImageSize size{side, side};
  const image::ColorMode color_mode = image::color_mode_from_name(arguments.text("color-mode"));

  std::string dir = arguments.text("data");
  fs::path temporary;
  if (dir.empty()) {
    temporary = fs::temp_directory_path() / ("kiln-bench-images-" + std::to_string(getpid()));
    fs::remove_all(temporary);
    const auto start = std::chrono::steady_clock::now();
    write_png_folder(temporary.string(), arguments.integer("images"));
    std::printf("Wrote %lld Fashion-MNIST PNGs to %s in %.1f s\n", static_cast<long long>(arguments.integer("images")),
                temporary.c_str(), seconds_since(start));
    dir = temporary.string();
  }
  struct RemoveAtExit {
    fs::path path;
    ~RemoveAtExit() {
      std::error_code ignored;
      if (!path.empty()) fs::remove_all(path, ignored);
    }
  } remove_at_exit{temporary};

  const double load_at_start = load_average();
  auto listing_start = std::chrono::steady_clock::now();
  const image::ImageDatasets listed = image::image_dataset_from_directory(dir, pipeline_options(size, color_mode, 1, false));
  const double listing_seconds = seconds_since(listing_start);
  const auto file_count = static_cast<int64_t>(listed.dataset.file_paths.size());
  std::printf("%lld files in %zu classes, listed in %.3f s; %u cores, load average %.2f at the start\n\n",
              static_cast<long long>(file_count), listed.class_names.size(), listing_seconds,
              std::thread::hardware_concurrency(), load_at_start);

  decode_rate(dir, pipeline_options(size, color_mode, 1, false), 1);  // untimed: brings the files into the page cache
  const double rate_1 = decode_rate(dir, pipeline_options(size, color_mode, 1, false), repeats);
  const double rate_2 = decode_rate(dir, pipeline_options(size, color_mode, 2, false), repeats);
  std::printf("decode (read, decode, resize to %lldx%lld, batch %lld), pipeline alone:\n", static_cast<long long>(side),
              static_cast<long long>(side), static_cast<long long>(kBatchSize));
  std::printf("  1 thread   %9.0f images/s\n  2 threads  %9.0f images/s  (x%.2f)\n\n", rate_1, rate_2, rate_2 / rate_1);

  const EpochFigures serial = train_epochs(dir, pipeline_options(size, color_mode, 1, false), epochs);
  const EpochFigures parallel = train_epochs(dir, pipeline_options(size, color_mode, data::AUTOTUNE, false), epochs);
  const EpochFigures prefetched = train_epochs(dir, pipeline_options(size, color_mode, data::AUTOTUNE, true), epochs);
  std::printf("training epoch (median of %d), %lld images, %d threads for the model:\n", epochs,
              static_cast<long long>(file_count), num_threads());
  std::printf("  serial decode, no prefetch          %6.2f s  input_wait %.2f\n", serial.seconds, serial.input_wait);
  std::printf("  parallel decode, no prefetch        %6.2f s  input_wait %.2f\n", parallel.seconds, parallel.input_wait);
  std::printf("  parallel decode + prefetch (default) %5.2f s  input_wait %.2f\n", prefetched.seconds, prefetched.input_wait);

  std::optional<bench::PeerRun> torch;
  if (!arguments.flag("no-peer")) {
    std::printf("\n");
    std::fflush(stdout);
    torch = bench::run_torch_peer(kProgram, "torch_images.py",
                                  "--data " + bench::shell_quoted(dir) + " --image-size " + std::to_string(side) + " --color-mode " +
                                      arguments.text("color-mode") + " --epochs " + std::to_string(epochs) + " --repeats " +
                                      std::to_string(repeats) + " --threads " + std::to_string(num_threads()));
  }
  double decode_vs_torch = 0.0, epoch_vs_torch = 0.0;  // how many times faster kiln is
  if (torch) {
    const auto number = [&](const std::string& key) { return torch->figures.numbers.at(key); };
    std::printf("PyTorch %s, DataLoader with Pillow decoding, the same folder, model and batch; torch.set_num_threads(%g), BLAS %s:\n",
                torch->figures.texts.at("torch_version").c_str(), number("threads"), bench::peer_blas(*torch).c_str());
    for (int row = 0; torch->figures.numbers.count("workers." + std::to_string(row) + ".workers"); ++row) {
      const std::string key = "workers." + std::to_string(row) + ".";
      std::printf("  workers %g   decode %9.0f images/s   epoch %6.2f s\n", number(key + "workers"),
                  number(key + "decode_images_per_s"), number(key + "epoch_s"));
    }
    decode_vs_torch = rate_2 / number("best.decode_images_per_s");
    epoch_vs_torch = number("best.epoch_s") / prefetched.seconds;
    std::printf("kiln against PyTorch's best: decoding on 2 threads %.2fx as fast, the default epoch %.2fx as fast\n",
                decode_vs_torch, epoch_vs_torch);
  }

  if (const std::string path = arguments.text("json"); !path.empty()) {
    using Json = nlohmann::ordered_json;
    Json document = {{"files", file_count},
                     {"classes", listed.class_names.size()},
                     {"image_size", side},
                     {"batch_size", kBatchSize},
                     {"cores", std::thread::hardware_concurrency()},
                     {"model_threads", num_threads()},
                     {"load_average_at_start", load_at_start},
                     {"listing_s", listing_seconds}};
    document["decode_images_per_s"] = {{"threads_1", rate_1}, {"threads_2", rate_2}};
    document["epoch_s"] = {{"serial_no_prefetch", serial.seconds},
                           {"parallel_no_prefetch", parallel.seconds},
                           {"parallel_prefetch", prefetched.seconds}};
    document["input_wait"] = {{"serial_no_prefetch", serial.input_wait},
                              {"parallel_no_prefetch", parallel.input_wait},
                              {"parallel_prefetch", prefetched.input_wait}};
    document["vs_torch"] = torch ? Json{{"decode", decode_vs_torch}, {"epoch", epoch_vs_torch}} : Json(nullptr);
    document["torch"] = torch ? Json::parse(torch->json) : Json(nullptr);
    io::write_file_atomically(path, document.dump(1) + "\n");
    std::cout << "\nWrote " << path << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
