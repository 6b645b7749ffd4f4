// kiln-bench-model — training speed, GEMM efficiency, memory and start-up: kiln beside PyTorch,
// on the same models, data, batch sizes and thread count, in the same run.
//
//   W1  the seed's model (Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax), Adam, batch 64:
//       seconds per epoch (median of epochs 2..), samples/s, test accuracy, peak RSS, first batch
//   W2  784-1024-1024-10 relu, batch 256: samples/s and GFLOP/s against the measured GEMM rate,
//       with 1 and 2 threads
//   scaling: seconds per epoch against batch size (16..1024) and hidden width (64..4096)
//   GEMM: single-precision GEMM at W1's and W2's shapes and a 1024 cube, 1 and 2 threads, the
//         better of Eigen's own product and kiln::gemm
// W1 and W2 run in child processes (this program with --child, and bench/peers/torch_model.py
// --child with Debian's OpenMP OpenBLAS), so peak memory and start-up are each workload's own.
// They run in rounds, PyTorch's and kiln's back to back, and the table shows medians over rounds;
// W1's floor and W2's share of the GEMM rate use rates measured again in each round.
#include "../../apps/common/arguments.hpp"
#include "../../apps/common/run_app.hpp"
#include "../../apps/common/idx_batches.hpp"
#include "../common/median.hpp"
#include "../common/flat_json.hpp"

#include <kiln/kiln.hpp>

#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

namespace {

using namespace kiln;
using Clock = std::chrono::steady_clock;

// ---- figures ---------------------------------------------------------------------------------------

// Floating-point operations per training sample of a dense stack: forward (2 k n per layer),
// dW (the same again) and dx (every layer but the first, which has no one to pass it to).
double training_flops_per_sample(const std::vector<int64_t>& widths) {
  double flops = 0.0;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    const double layer = 2.0 * static_cast<double>(widths[i] * widths[i + 1]);
    flops += (i == 0 ? 2.0 : 3.0) * layer;
  }
  return flops;
}

using bench::median;

double seconds_since_epoch_clock() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double peak_rss_megabytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// ---- GEMM rate -------------------------------------------------------------------------------------

// Best of five timed C = A B with A [m, k] and B [k, n], row-major as kiln's layers use them, by
// Eigen's own product (threaded by Eigen) and by kiln::gemm (the layers' product, threaded by
// slices of C). The better of the two sets the rate the training figures are held against.
struct GemmRates {
  double eigen = 0, kiln = 0;
  double best() const { return std::max(eigen, kiln); }
  GemmRates& keep_best(const GemmRates& other) {
    eigen = std::max(eigen, other.eigen);
    kiln = std::max(kiln, other.kiln);
    return *this;
  }
};

GemmRates gemm_gflops(int64_t m, int64_t k, int64_t n, int threads) {
  set_num_threads(threads);
  Matrix a = Matrix::Random(m, k), b = Matrix::Random(k, n), c(m, n);
  const ConstMatrixMap a_map(a.data(), m, k), b_map(b.data(), k, n);
  const MatrixMap c_map(c.data(), m, n);
  auto rate = [&](const std::function<void()>& product) {
    product();  // warm-up: first-touch pages and packing buffers
    double best = 1e30;
    for (int repeat = 0; repeat < 5; ++repeat) {
      const auto start = Clock::now();
      const int inner = m * k * n < 50'000'000 ? 20 : 2;  // small shapes: time several to beat the clock's grain
      for (int i = 0; i < inner; ++i) product();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count() / inner);
    }
    return 2.0 * static_cast<double>(m * k * n) / best / 1e9;
  };
  return {rate([&] { c.noalias() = a * b; }), rate([&] { gemm(a_map, Operand::AsIs, b_map, Operand::AsIs, c_map); })};
}

// ---- the workloads, each in a child process --------------------------------------------------------

Sequential dense_stack(const std::vector<int64_t>& widths, bool dropout) {
  Sequential model({layers::Flatten(Shape{28, 28})});
  for (size_t i = 1; i + 1 < widths.size(); ++i) {
    model.add(layers::Dense(widths[i], Activation::ReLU));
    if (dropout) model.add(layers::Dropout(0.2f));
  }
  model.add(layers::Dense(widths.back(), Activation::Softmax));
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  return model;
}

// Records when the first training step of the run ends.
class FirstBatchClock : public Callback {
 public:
  explicit FirstBatchClock(double launched) : launched_(launched) {}
  void on_train_batch_end(int64_t, const Logs&) override {
    if (seconds_ < 0) seconds_ = seconds_since_epoch_clock() - launched_;
  }
  double seconds() const { return seconds_; }

 private:
  double launched_;
  double seconds_ = -1;
};

// Prints the child's figures as one JSON line on standard output.
int run_child(const std::string& workload, int threads, int epochs, const std::string& data_dir, double launched) {
  set_num_threads(threads);
  set_random_seed(1);
  datasets::TrainTest data = datasets::load_idx(data_dir);
  const auto train = data::from_tensor_slices(std::move(data.train));
  const auto test = data::from_tensor_slices(std::move(data.test));
  const bool w1 = workload == "w1";
  const std::vector<int64_t> widths = w1 ? std::vector<int64_t>{784, 128, 10} : std::vector<int64_t>{784, 1024, 1024, 10};
  const int64_t batch_size = w1 ? 64 : 256;
  Sequential model = dense_stack(widths, /*dropout=*/w1);
  auto first_batch = std::make_shared<FirstBatchClock>(launched);
  const History history = model.fit(apps::training_batches(train, batch_size, /*prefetch=*/true),
                                    {.epochs = epochs, .verbose = 0, .callbacks = {first_batch}});
  nlohmann::ordered_json json = {{"epoch_s", history.epoch_seconds}, {"first_batch_s", first_batch->seconds()}};
  if (w1) json["test_accuracy"] = model.evaluate(apps::evaluation_batches(test, 256), {.verbose = 0}).at("accuracy");
  json["peak_rss_mb"] = peak_rss_megabytes();
  std::cout << json.dump() << std::endl;
  return 0;
}

std::string run_command(const std::string& command) {
  std::string output;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    while (size_t got = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, got);
    if (pclose(pipe) != 0) throw std::runtime_error("command failed: " + command + "\n" + output);
  } else {
    throw std::runtime_error("cannot run: " + command);
  }
  return output;
}

bench::FlatJson child_figures(const std::string& self, const std::string& workload, int threads, int epochs,
                              const std::string& data_dir) {
  std::ostringstream command;
  command.precision(17);
  command << "'" << self << "' --child " << workload << " --threads " << threads << " --epochs " << epochs
          << " --data '" << data_dir << "' --launched " << seconds_since_epoch_clock();
  const std::string output = run_command(command.str());
  return bench::FlatJsonReader::read(output.substr(output.rfind('{')));
}

// The same workload in PyTorch's child process (bench/peers/torch_model.py --child), with the
// same figures under the same keys.
bench::FlatJson torch_child_figures(const std::string& workload, int threads, int epochs, const std::string& data_dir) {
  std::ostringstream command;
  command.precision(17);
  command << "LD_LIBRARY_PATH=" << KILN_OPENBLAS_OPENMP_DIR << " /usr/bin/python3 " << KILN_SOURCE_DIR
          << "/bench/peers/torch_model.py --child " << workload << " --threads " << threads << " --epochs " << epochs
          << " --data '" << data_dir << "' --launched " << seconds_since_epoch_clock();
  const std::string output = run_command(command.str());
  return bench::FlatJsonReader::read(output.substr(output.rfind('{')));
}

// One workload's figures over several runs: each run's median epoch (epochs 2.. when there are
// several), then the median over runs; the largest peak memory.
struct WorkloadFigures {
  double epoch_s = 0, test_accuracy = 0, peak_rss_mb = 0, first_batch_s = 0;
};

// One run's seconds per epoch: the median of its epochs after the first.
double run_epoch_seconds(const bench::FlatJson& run) {
  std::vector<double> epochs;
  for (int e = 1; run.numbers.count("epoch_s." + std::to_string(e)); ++e) epochs.push_back(run.numbers.at("epoch_s." + std::to_string(e)));
  return median(epochs);
}

WorkloadFigures summarize(const std::vector<bench::FlatJson>& runs) {
  std::vector<double> epochs, accuracies, first_batches;
  WorkloadFigures figures;
  for (const bench::FlatJson& run : runs) {
    epochs.push_back(run_epoch_seconds(run));
    if (run.numbers.count("test_accuracy")) accuracies.push_back(run.numbers.at("test_accuracy"));
    if (run.numbers.count("first_batch_s")) first_batches.push_back(run.numbers.at("first_batch_s"));
    figures.peak_rss_mb = std::max(figures.peak_rss_mb, run.numbers.at("peak_rss_mb"));
  }
  figures.epoch_s = median(epochs);
  figures.test_accuracy = median(accuracies);
  figures.first_batch_s = median(first_batches);
  return figures;
}

// Seconds per epoch of a Dense(width) model at this batch size, from the median of three timed
// parts of an epoch (one part alone can fall on a moment when the shared machine is busy).
double part_epoch_seconds(const data::Dataset<LabeledData>& train, int64_t width, int64_t batch_size) {
  set_random_seed(1);
  Sequential model = dense_stack({784, width, 10}, /*dropout=*/false);
  const int64_t steps_per_epoch = (train.cardinality() + batch_size - 1) / batch_size;
  const int64_t steps = std::min<int64_t>(steps_per_epoch, std::max<int64_t>(20, 4000 / std::max<int64_t>(1, width / 64) / batch_size * 8));
  auto batches = apps::training_batches(train, batch_size, /*prefetch=*/true).repeat();
  // Warm-up: a few steps, then as many again as a timed part, so AUTOTUNE's prefetch buffer has
  // settled as it has in every epoch of a training run after the first.
  model.fit(batches, {.epochs = 1, .verbose = 0, .steps_per_epoch = 3});
  model.fit(batches, {.epochs = 1, .verbose = 0, .steps_per_epoch = steps});
  std::vector<double> parts;
  for (int part = 0; part < 3; ++part) {
    parts.push_back(model.fit(batches, {.epochs = 1, .verbose = 0, .steps_per_epoch = steps}).epoch_seconds[0]);
  }
  return median(parts) * static_cast<double>(steps_per_epoch) / static_cast<double>(steps);
}

// ---- the table ----------------------------------------------------------------------------------------

struct Row {
  std::string name, unit;
  double kiln = 0, torch = 0;
  bool lower_is_better = true;
};

std::string format_row(const Row& row, bool have_torch) {
  char line[256];
  if (!have_torch || row.torch <= 0) {
    std::snprintf(line, sizeof line, "| %-38s | %10.3f | %10s | %8s |", (row.name + " (" + row.unit + ")").c_str(), row.kiln, "-", "-");
  } else {
    const double advantage = row.lower_is_better ? row.torch / row.kiln : row.kiln / row.torch;
    std::snprintf(line, sizeof line, "| %-38s | %10.3f | %10.3f | %7.2fx |", (row.name + " (" + row.unit + ")").c_str(), row.kiln,
                  row.torch, advantage);
  }
  return line;
}

int run(int argc, char** argv) {
  apps::Arguments arguments("kiln-bench-model",
                            "Training speed, GEMM efficiency, memory and start-up of kiln beside PyTorch (W1: the\n"
                            "seed's model, W2: 784-1024-1024-10), printed as a Markdown table.");
  arguments.add_option("json", "PATH", "", "also write every figure as JSON");
  arguments.add_option("markdown", "PATH", "", "also write the table as Markdown");
  arguments.add_option("data", "DIR", datasets::kFashionMnistDir, "Fashion-MNIST IDX folder");
  arguments.add_option("threads", "N", "2", "threads for both frameworks");
  arguments.add_option("epochs", "N", "5", "W1 epochs (the median of epochs 2.. is reported)");
  arguments.add_option("rounds", "N", "3", "W1 and W2 runs per framework, kiln's and PyTorch's alternating");
  arguments.add_switch("no-peer", "skip PyTorch");
  arguments.add_option("child", "w1|w2", "", "(internal) run one workload and print its figures");
  arguments.add_option("launched", "SECONDS", "0", "(internal) when the parent launched the child");
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed
  const std::string data_dir = arguments.text("data");
  const int threads = static_cast<int>(arguments.integer("threads"));
  const int epochs = static_cast<int>(arguments.integer("epochs"));
  const int rounds = std::max(1, static_cast<int>(arguments.integer("rounds")));
  if (arguments.has("child")) {
    return run_child(arguments.text("child"), threads, epochs, data_dir, arguments.number("launched"));
  }
  const std::string self = argv[0];

  // PyTorch first, while nothing of kiln's runs, so neither disturbs the other.
  bench::FlatJson torch;
  bool have_torch = false;
  if (!arguments.flag("no-peer")) {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
      std::cout << "PyTorch not found: install Debian's python3-torch and libopenblas0-openmp to compare.\n";
    } else {
      std::cout << "Running PyTorch (bench/peers/torch_model.py)...\n" << std::flush;
      const std::string command = std::string("LD_LIBRARY_PATH=") + KILN_OPENBLAS_OPENMP_DIR +
                                  " /usr/bin/python3 " + KILN_SOURCE_DIR + "/bench/peers/torch_model.py --threads " +
                                  std::to_string(threads) + " --epochs " + std::to_string(epochs) + " --data '" + data_dir + "'";
      torch = bench::FlatJsonReader::read(run_command(command));
      have_torch = true;
    }
  }
  auto torch_number = [&](const std::string& key) {
    auto found = torch.numbers.find(key);
    return found == torch.numbers.end() ? 0.0 : found->second;
  };

  std::cout << "Measuring GEMM rates...\n" << std::flush;
  auto w1_shapes_rates = [&] {
    GemmRates rates = gemm_gflops(64, 784, 128, 1);
    return rates.keep_best(gemm_gflops(64, 784, 128, threads)).keep_best(gemm_gflops(784, 64, 128, 1)).keep_best(gemm_gflops(784, 64, 128, threads));
  };
  auto w2_shapes_rates = [&] {
    GemmRates rates = gemm_gflops(256, 1024, 1024, threads);
    return rates.keep_best(gemm_gflops(1024, 256, 1024, threads)).keep_best(gemm_gflops(256, 784, 1024, threads));
  };
  const GemmRates w1_rates = w1_shapes_rates(), w2_rates = w2_shapes_rates();
  GemmRates cube_rates = gemm_gflops(1024, 1024, 1024, 1);
  cube_rates.keep_best(gemm_gflops(1024, 1024, 1024, threads));
  const double w1_gemm = w1_rates.best(), w2_gemm = w2_rates.best(), cube_gemm = cube_rates.best();
  const double machine_peak = std::max({w1_gemm, w2_gemm, cube_gemm});

  const double w1_flops = training_flops_per_sample({784, 128, 10}) * 60000.0;
  const double w2_flops = training_flops_per_sample({784, 1024, 1024, 10}) * 60000.0;

  // W1 and W2 in rounds, PyTorch's run and kiln's back to back, so that both frameworks meet the
  // same machine: on a shared host the speed of two-thread work drifts over minutes. For the same
  // reason the GEMM rates that W1's floor and W2's share are held against are measured again in
  // each round, just before kiln's run, and those ratios are taken round by round.
  std::vector<bench::FlatJson> kiln_w1, kiln_w2_one, kiln_w2, torch_w1, torch_w2_one, torch_w2;
  std::vector<double> w1_round_rates, w2_round_rates, w1_floor_ratios, w2_gemm_shares;
  for (int round = 1; round <= rounds; ++round) {
    std::cout << "Running W1 and W2, round " << round << " of " << rounds << "...\n" << std::flush;
    if (have_torch) torch_w1.push_back(torch_child_figures("w1", threads, epochs, data_dir));
    w1_round_rates.push_back(w1_shapes_rates().best());
    kiln_w1.push_back(child_figures(self, "w1", threads, epochs, data_dir));
    w1_floor_ratios.push_back(run_epoch_seconds(kiln_w1.back()) / (w1_flops / (w1_round_rates.back() * 1e9)));
    if (have_torch) torch_w2_one.push_back(torch_child_figures("w2", 1, 2, data_dir));
    kiln_w2_one.push_back(child_figures(self, "w2", 1, 2, data_dir));
    if (have_torch) torch_w2.push_back(torch_child_figures("w2", threads, 2, data_dir));
    w2_round_rates.push_back(w2_shapes_rates().best());
    kiln_w2.push_back(child_figures(self, "w2", threads, 2, data_dir));
    w2_gemm_shares.push_back(w2_flops / run_epoch_seconds(kiln_w2.back()) / 1e9 / w2_round_rates.back());
  }
  const WorkloadFigures w1 = summarize(kiln_w1), torch_w1_figures = summarize(torch_w1);
  const double w1_epoch = w1.epoch_s;
  const double w2_epoch_1 = summarize(kiln_w2_one).epoch_s, w2_epoch = summarize(kiln_w2).epoch_s;
  const double torch_w2_epoch_1 = summarize(torch_w2_one).epoch_s, torch_w2_epoch = summarize(torch_w2).epoch_s;

  const double w1_floor = w1_flops / (median(w1_round_rates) * 1e9);
  const double w1_floor_ratio = median(w1_floor_ratios), w2_gemm_share = median(w2_gemm_shares);

  std::cout << "Scaling...\n" << std::flush;
  const auto train = data::from_tensor_slices(datasets::load_idx(data_dir).train);
  set_num_threads(threads);
  std::vector<std::pair<int64_t, double>> by_batch, by_width;
  for (int64_t batch : {16, 32, 64, 128, 256, 512, 1024}) by_batch.emplace_back(batch, part_epoch_seconds(train, 128, batch));
  for (int64_t width : {64, 256, 1024, 4096}) by_width.emplace_back(width, part_epoch_seconds(train, width, 64));

  auto per_second = [](double epoch_seconds) { return epoch_seconds > 0 ? 60000.0 / epoch_seconds : 0.0; };
  std::vector<Row> rows = {
      {"W1 seconds per epoch", "s", w1_epoch, torch_w1_figures.epoch_s},
      {"W1 samples per second", "1/s", 60000.0 / w1_epoch, per_second(torch_w1_figures.epoch_s), false},
      {"W1 test accuracy after " + std::to_string(epochs) + " epochs", "", w1.test_accuracy, torch_w1_figures.test_accuracy, false},
      {"W1 peak RSS", "MiB", w1.peak_rss_mb, torch_w1_figures.peak_rss_mb},
      {"W1 time to first batch", "s", w1.first_batch_s, torch_w1_figures.first_batch_s},
      {"W1 compute floor (GEMM rate at W1 shapes, per round)", "s", w1_floor, 0},
      {"W2 seconds per epoch, " + std::to_string(threads) + " threads", "s", w2_epoch, torch_w2_epoch},
      {"W2 seconds per epoch, 1 thread", "s", w2_epoch_1, torch_w2_epoch_1},
      {"W2 samples per second", "1/s", 60000.0 / w2_epoch, per_second(torch_w2_epoch), false},
      {"W2 achieved", "GFLOP/s", w2_flops / w2_epoch / 1e9, per_second(torch_w2_epoch) * w2_flops / 60000.0 / 1e9, false},
      {"GEMM at W1 shapes", "GFLOP/s", w1_gemm, torch_number("gemm_gflops.w1_forward"), false},
      {"GEMM at W2 shapes", "GFLOP/s", w2_gemm, torch_number("gemm_gflops.w2_hidden"), false},
      {"GEMM at W1 shapes, in the rounds (median)", "GFLOP/s", median(w1_round_rates), 0, false},
      {"GEMM at W2 shapes, in the rounds (median)", "GFLOP/s", median(w2_round_rates), 0, false},
      {"GEMM 1024 cube", "GFLOP/s", cube_gemm, torch_number("gemm_gflops.square_1024"), false},
      {"GEMM at W1 shapes, Eigen's threaded product", "GFLOP/s", w1_rates.eigen, 0, false},
      {"GEMM at W1 shapes, kiln::gemm", "GFLOP/s", w1_rates.kiln, 0, false},
      {"GEMM at W2 shapes, Eigen's threaded product", "GFLOP/s", w2_rates.eigen, 0, false},
      {"GEMM at W2 shapes, kiln::gemm", "GFLOP/s", w2_rates.kiln, 0, false},
  };
  for (size_t i = 0; i < by_batch.size(); ++i) {
    rows.push_back({"epoch at batch " + std::to_string(by_batch[i].first), "s", by_batch[i].second,
                    torch_number("scaling.batch." + std::to_string(i) + ".epoch_s")});
  }
  for (size_t i = 0; i < by_width.size(); ++i) {
    rows.push_back({"epoch at width " + std::to_string(by_width[i].first) + ", batch 64", "s", by_width[i].second,
                    torch_number("scaling.width." + std::to_string(i) + ".epoch_s")});
  }

  std::ostringstream table;
  table << "| measure | kiln | PyTorch | kiln's advantage |\n|---|---:|---:|---:|\n";
  for (const Row& row : rows) table << format_row(row, have_torch) << "\n";
  table << "\n";
  char line[512];
  if (have_torch) {
    std::snprintf(line, sizeof line,
                  "W1: %.2fx PyTorch's epoch time (target <= 0.4), %.2fx the compute floor (target <= 1.5), "
                  "accuracy %+.2f points, %.2fx PyTorch's peak memory (target <= 0.4).\n",
                  w1_epoch / torch_w1_figures.epoch_s, w1_floor_ratio,
                  100.0 * (w1.test_accuracy - torch_w1_figures.test_accuracy), w1.peak_rss_mb / torch_w1_figures.peak_rss_mb);
  } else {
    std::snprintf(line, sizeof line, "W1: %.2fx the compute floor (target <= 1.5).\n", w1_floor_ratio);
  }
  table << line;
  std::snprintf(line, sizeof line,
                "W2: %.0f%% of the GEMM rate at its shapes, measured in the same round (target >= 75%%), %.2fx from 1 to %d threads (target >= 1.7)",
                100.0 * w2_gemm_share, w2_epoch_1 / w2_epoch, threads);
  table << line;
  if (have_torch) {
    std::snprintf(line, sizeof line, ", %.2fx faster than PyTorch (target >= 1.3)", torch_w2_epoch / w2_epoch);
    table << line;
  }
  std::snprintf(line, sizeof line, ". Machine GEMM peak measured: %.0f GFLOP/s.\n", machine_peak);
  table << line;
  std::cout << "\n" << table.str();

  if (const std::string path = arguments.text("markdown"); !path.empty()) io::write_file_atomically(path, table.str());
  if (const std::string path = arguments.text("json"); !path.empty()) {
    nlohmann::ordered_json document;
    for (const Row& row : rows) document[row.name + " (" + row.unit + ")"] = {{"kiln", row.kiln}, {"torch", row.torch}};
    // The ratios the targets are judged by, unrounded, and the rounds the medians come from.
    nlohmann::ordered_json targets = {{"w1_floor_ratio", w1_floor_ratio},
                                      {"w1_floor_ratio_by_round", w1_floor_ratios},
                                      {"w2_gemm_share", w2_gemm_share},
                                      {"w2_gemm_share_by_round", w2_gemm_shares},
                                      {"w2_thread_speedup", w2_epoch_1 / w2_epoch}};
    if (have_torch) {
      targets["w1_epoch_vs_torch"] = w1_epoch / torch_w1_figures.epoch_s;
      targets["w1_accuracy_points_vs_torch"] = 100.0 * (w1.test_accuracy - torch_w1_figures.test_accuracy);
      targets["w1_peak_memory_vs_torch"] = w1.peak_rss_mb / torch_w1_figures.peak_rss_mb;
      targets["w2_speedup_vs_torch"] = torch_w2_epoch / w2_epoch;
    }
    document["targets"] = std::move(targets);
    io::write_file_atomically(path, document.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app("kiln-bench-model", run, argc, argv); }
