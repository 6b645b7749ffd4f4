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
//   - peak memory (the process's maximum resident set), kiln's and the peer's;
//   - each Conv2D's forward as kiln computes it (im2col and one GEMM) against a direct kernel:
//     the measurement behind Conv2D's choice of algorithm (docs/convnets.md).
#include "../common/median.hpp"
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

using bench::median;

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

// The algorithm, measured. A direct convolution (stride 1, valid padding) in NHWC, the other way
// Conv2D could compute: each output pixel's filters in one vector loop,
//   y[n, oh, ow, f] = sum over i, j, c of x[n, oh + i, ow + j, c] K[i, j, c, f],
// its samples shared out to kiln's team as Conv2D's own loops are.
void direct_convolution(const Tensor& x, const Tensor& kernel, Tensor& y) {
  const int64_t height = x.shape()[1], width = x.shape()[2], channels = x.shape()[3];
  const int64_t size = kernel.shape()[0], filters = kernel.shape()[3];
  const int64_t out_h = height - size + 1, out_w = width - size + 1;
  y.resize(Shape{x.shape()[0], out_h, out_w, filters});
  const float* in = x.data();
  const float* k = kernel.data();
  float* out = y.data();
  parallel_tiles(x.shape()[0], [&](int64_t first, int64_t end) {
    for (int64_t n = first; n < end; ++n) {
      for (int64_t oh = 0; oh < out_h; ++oh) {
        for (int64_t ow = 0; ow < out_w; ++ow) {
          float* pixel = out + ((n * out_h + oh) * out_w + ow) * filters;
          std::fill_n(pixel, filters, 0.0f);
          for (int64_t i = 0; i < size; ++i) {
            for (int64_t j = 0; j < size; ++j) {
              const float* source = in + ((n * height + oh + i) * width + ow + j) * channels;
              const float* weights = k + (i * size + j) * channels * filters;
              for (int64_t c = 0; c < channels; ++c) {
                const float value = source[c];
                const float* row = weights + c * filters;
#pragma omp simd
                for (int64_t f = 0; f < filters; ++f) pixel[f] += value * row[f];
              }
            }
          }
        }
      }
    }
  });
}

struct ForwardTimes {
  Shape input;  // [height, width, channels]
  int64_t filters = 0;
  double im2col_s = 0, direct_s = 0;
};

// For each Conv2D of `model` (all stride 1, valid, as in Keras's convnet): one forward at batch
// `batch` as Conv2D computes it (im2col and one GEMM) and by the direct kernel, the best of five
// after a warm-up.
std::vector<ForwardTimes> forward_times(Sequential& model, int64_t batch) {
  std::vector<ForwardTimes> times;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    auto* conv = dynamic_cast<layers::Conv2D*>(&model.layer(i));
    if (!conv) continue;
    const Shape input = i == 0 ? model.input_shape() : model.layer_output_shape(i - 1);
    const Shape kernel_shape = conv->parameters()[0]->shape;
    Sequential alone({layers::Conv2D(kernel_shape[3], {kernel_shape[0], kernel_shape[1]}, {.input_shape = input})});
    Tensor x(input.with_batch(batch), 0.5f), y;
    Tensor kernel(kernel_shape, 0.01f);
    auto best_of_five = [](auto&& run) {
      run();
      double best = 1e30;
      for (int r = 0; r < 5; ++r) {
        const auto start = std::chrono::steady_clock::now();
        run();
        best = std::min(best, seconds_since(start));
      }
      return best;
    };
    alone.forward(x);
    times.push_back({input, kernel_shape[3], best_of_five([&] { alone.forward(x); }),
                     best_of_five([&] { direct_convolution(x, kernel, y); })});
  }
  return times;
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
  std::printf("\nConv2D's algorithm: one forward at batch %lld, im2col and one GEMM against a direct kernel\n\n",
              static_cast<long long>(kBatch));
  std::printf("| input | filters | im2col + GEMM (ms) | direct (ms) | direct / im2col |\n|---|---:|---:|---:|---:|\n");
  for (const ForwardTimes& t : forward_times(model, kBatch)) {
    std::printf("| %s | %lld | %.2f | %.2f | %.2f |\n", t.input.str().c_str(), static_cast<long long>(t.filters),
                t.im2col_s * 1e3, t.direct_s * 1e3, t.direct_s / t.im2col_s);
  }

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
