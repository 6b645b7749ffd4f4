// kiln-bench-convnet — Keras's MNIST convnet (apps/common/models.hpp's "cnn": Conv2D 32 3x3 relu,
// MaxPooling2D, Conv2D 64 3x3 relu, MaxPooling2D, Flatten, Dropout 0.5, Dense 10 softmax; Adam;
// batch 128) on Fashion-MNIST, beside PyTorch's peer (bench/peers/torch_convnet.py) on the same
// data, in the same run, one after the other.
//
// Both keep the training images as the bytes the IDX files hold (47 MB instead of float32's 188)
// and make each batch float32 when it is taken: kiln through range(n).shuffle(n).batch(128)
// .map(gather).prefetch(AUTOTUNE), on the prefetch thread; the peer with x[rows].float() / 255 in
// its training loop. An epoch's time is taken from --rounds parts
// of --steps steps each, after a warm-up, scaled to the epoch's 469 steps; the median is reported.
// Beside it:
//   - the FLOPs of an epoch, from the layers' shapes: each Conv2D's product (2 * out_h * out_w *
//     filters * kh * kw * channels per sample) forward, again for its kernel gradient, and again
//     for its input gradient except in the first layer, which needs none; the Dense's likewise;
//   - the GEMM floor: the time kiln::gemm takes for exactly those products, at their shapes, on
//     this machine in this run, times the steps of an epoch: what an epoch would take if nothing
//     but the products ran;
//   - peak memory (the process's maximum resident set), kiln's and the peer's.
#include "../common/torch_peer.hpp"
#include "../../apps/common/arguments.hpp"
#include "../../apps/common/models.hpp"
#include "../../apps/common/run_app.hpp"

#include <kiln/kiln.hpp>

#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

namespace {

using namespace kiln;

constexpr const char* kProgram = "kiln-bench-convnet";
constexpr int64_t kBatch = 128;
constexpr double kTargetOverTorch = 0.5, kTargetOverFloor = 2.0, kTargetMemoryOverTorch = 0.4;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double peak_rss_megabytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

// One product C = op(A) op(B) of a training step: [m, k] x [k, n].
struct Product {
  int64_t m, k, n;
  Operand op_a, op_b;
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n); }
};

// The products of one training step of `model` at batch `batch`: for each Conv2D, P K forward,
// P^T dz for its kernel, dz K^T for its input (not in the first layer with parameters); for each
// Dense, x W, x^T dz, dz W^T likewise.
std::vector<Product> step_products(Sequential& model, int64_t batch) {
  std::vector<Product> products;
  bool first = true;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    Layer& layer = model.layer(i);
    int64_t rows = 0, inner = 0, outputs = 0;
    if (auto* conv = dynamic_cast<layers::Conv2D*>(&layer)) {
      const Shape kernel = conv->parameters()[0]->shape;  // [kh, kw, channels, filters]
      const Shape out = model.layer_output_shape(i);          // [out_h, out_w, filters]
      rows = batch * out[0] * out[1];
      inner = kernel[0] * kernel[1] * kernel[2];
      outputs = kernel[3];
    } else if (auto* dense = dynamic_cast<layers::Dense*>(&layer)) {
      rows = batch;
      inner = dense->parameters()[0]->shape[0];
      outputs = dense->units();
    } else {
      continue;
    }
    products.push_back({rows, inner, outputs, Operand::AsIs, Operand::AsIs});        // forward
    products.push_back({inner, rows, outputs, Operand::Transposed, Operand::AsIs});  // kernel gradient
    if (!first) products.push_back({rows, outputs, inner, Operand::AsIs, Operand::Transposed});  // input gradient
    first = false;
  }
  return products;
}

// Seconds kiln::gemm takes for the product, the best of five after a warm-up.
double gemm_seconds(const Product& product) {
  const int64_t a_rows = product.op_a == Operand::AsIs ? product.m : product.k;
  const int64_t a_cols = product.op_a == Operand::AsIs ? product.k : product.m;
  const int64_t b_rows = product.op_b == Operand::AsIs ? product.k : product.n;
  const int64_t b_cols = product.op_b == Operand::AsIs ? product.n : product.k;
  Tensor a(Shape{a_rows, a_cols}, 0.5f), b(Shape{b_rows, b_cols}, 0.25f), c(Shape{product.m, product.n});
  const ConstMatrixMap a_map(a.data(), a_rows, a_cols), b_map(b.data(), b_rows, b_cols);
  gemm(a_map, product.op_a, b_map, product.op_b, c.matrix());
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    gemm(a_map, product.op_a, b_map, product.op_b, c.matrix());
    best = std::min(best, seconds_since(start));
  }
  return best;
}

int run(int argc, char** argv) {
  apps::Arguments arguments(kProgram,
                            "Times Keras's MNIST convnet on Fashion-MNIST in kiln and in PyTorch (the same run),\n"
                            "with the FLOPs of an epoch, the GEMM floor they imply, and peak memory.");
  arguments.add_option("data", "DIR", datasets::kFashionMnistDir, "folder with the IDX files, plain or .gz");
  arguments.add_option("steps", "N", "60", "training steps in each timed part of an epoch");
  arguments.add_option("rounds", "N", "3", "timed parts; the median is reported");
  arguments.add_option("json", "PATH", "", "also write the figures as JSON to PATH");
  arguments.add_switch("no-peer", "skip the PyTorch peer");
  if (!arguments.parse(argc, argv)) return 0;
  const int64_t steps = arguments.integer_in("steps", 1, 100000);
  const int64_t rounds = arguments.integer_in("rounds", 1, 100);
  const std::string data_dir = arguments.text("data");

  set_random_seed(1);
  const auto train = std::make_shared<const datasets::ByteImages>(datasets::load_idx_bytes(data_dir).train);
  const int64_t samples = train->size();
  const int64_t steps_per_epoch = (samples + kBatch - 1) / kBatch;
  Sequential model = apps::make_model("cnn", train->image_shape(), 10);
  model.compile(optimizers::Adam(1e-3f), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  const auto batches = data::range(samples)
                           .shuffle(samples)
                           .batch(kBatch)
                           .map([train](const std::vector<int64_t>& rows) { return train->gather(rows); })
                           .prefetch(data::AUTOTUNE)
                           .repeat();
  model.fit(batches, {.epochs = 1, .verbose = 0, .steps_per_epoch = 5});  // warm-up
  std::vector<double> epochs;
  for (int64_t round = 0; round < rounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    model.fit(batches, {.epochs = 1, .verbose = 0, .steps_per_epoch = steps});
    epochs.push_back(seconds_since(start) * static_cast<double>(steps_per_epoch) / static_cast<double>(steps));
    std::fprintf(stderr, "%s: kiln round %lld: %.2f s per epoch\n", kProgram, static_cast<long long>(round + 1), epochs.back());
  }
  const double kiln_epoch_s = median(epochs), kiln_rss_mb = peak_rss_megabytes();

  double step_flops = 0, step_floor_s = 0;
  for (const Product& product : step_products(model, kBatch)) {
    step_flops += product.flops();
    step_floor_s += gemm_seconds(product);
  }
  const double epoch_gflop = step_flops * static_cast<double>(samples) / kBatch / 1e9;
  const double floor_s = step_floor_s * static_cast<double>(steps_per_epoch);

  std::optional<bench::PeerRun> torch;
  if (!arguments.flag("no-peer")) {
    torch = bench::run_torch_peer(kProgram, "torch_convnet.py",
                                  "--data " + bench::shell_quoted(data_dir) + " --threads " + std::to_string(num_threads()) +
                                      " --steps " + std::to_string(steps) + " --rounds " + std::to_string(rounds));
  }
  const double torch_epoch_s = torch ? torch->figures.numbers.at("epoch_s") : 0.0;
  const double torch_rss_mb = torch ? torch->figures.numbers.at("peak_rss_mb") : 0.0;

  std::printf("\nKeras's MNIST convnet on Fashion-MNIST, batch %lld, %d threads; epoch times from %lld parts of %lld steps\n\n",
              static_cast<long long>(kBatch), num_threads(), static_cast<long long>(rounds), static_cast<long long>(steps));
  std::printf("| measure | kiln | PyTorch | kiln / PyTorch | target |\n|---|---:|---:|---:|---|\n");
  if (torch) {
    std::printf("| seconds per epoch | %.2f | %.2f | %.2f | <= %.1f |\n", kiln_epoch_s, torch_epoch_s, kiln_epoch_s / torch_epoch_s, kTargetOverTorch);
    std::printf("| peak RSS (MiB) | %.0f | %.0f | %.2f | <= %.1f |\n", kiln_rss_mb, torch_rss_mb, kiln_rss_mb / torch_rss_mb, kTargetMemoryOverTorch);
  } else {
    std::printf("| seconds per epoch | %.2f | - | - | |\n| peak RSS (MiB) | %.0f | - | - | |\n", kiln_epoch_s, kiln_rss_mb);
  }
  std::printf("\nAn epoch is %.0f GFLOP of products; kiln::gemm does them in %.2f s here (the GEMM floor, %.0f GFLOP/s).\n",
              epoch_gflop, floor_s, epoch_gflop / floor_s);
  std::printf("kiln's epoch is %.2fx the floor (target <= %.1f).\n", kiln_epoch_s / floor_s, kTargetOverFloor);

  if (arguments.has("json")) {
    nlohmann::json document = {{"steps", steps},
                               {"rounds", rounds},
                               {"threads", num_threads()},
                               {"kiln", {{"epoch_s", kiln_epoch_s}, {"epoch_s_rounds", epochs}, {"peak_rss_mb", kiln_rss_mb}}},
                               {"epoch_gflop", epoch_gflop},
                               {"gemm_floor_s", floor_s}};
    if (torch) document["torch"] = nlohmann::json::parse(torch->json);
    std::ofstream(arguments.text("json")) << document.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
