// kiln-bench-distributed — what a distributed fit costs here, and what it would on N machines.
//
// Run plainly, it runs itself under `mpirun -np 1` and `mpirun -np 2` (--worker) and prints, for
// each rank count:
//   - MPI_Allreduce of float32 buffers from 4 bytes to 16 MB (median of repeats), from which it
//     takes the ring model's latency a and bandwidth b: an allreduce of S bytes on N ranks costs
//     2(N - 1) a + 2(N - 1)/N x S / b, so on 2 ranks t = 2a + S/b;
//   - an epoch of the seed's dense model (101,770 parameters, batch 64) on Fashion-MNIST's 60,000
//     images, and --convnet-steps steps of Keras's MNIST convnet (34,826 parameters, batch 128),
//     with fit(x, y): the job's batch shared between the ranks, one allreduce of the gradients a
//     step. Each time is split into the time inside allreduce (the gradients' and the step's
//     agreement, waiting for the slower rank included) and the rest. Beside them, the same work
//     in one plain process on all the cores, and PyTorch's DistributedDataParallel on 1 and 2
//     processes (bench/peers/torch_distributed.py: gloo, one thread and one core per process).
// The allreduces are timed again with Open MPI told to use TCP over loopback, as between machines.
// Then it projects N machines from those figures (docs/scale-out.md): a step's computation shrinks
// as N shares the batch, its allreduce grows as the ring formula says, over the TCP loopback link
// measured and over an assumed 10 Gb/s Ethernet. The projection's
// efficiency is one machine's time over N times the N machines' time, and it finds the batch per
// machine that keeps 8 machines 80% efficient. Last, what summing in an order that does not depend
// on the rank count would cost (exact_order_cost).
#include "../common/median.hpp"
#include "../common/torch_peer.hpp"
#include "../../apps/common/arguments.hpp"
#include "../../apps/common/models.hpp"
#include "../../apps/common/run_app.hpp"

#include <kiln/kiln.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace kiln;
using nlohmann::json;

constexpr const char* kProgram = "kiln-bench-distributed";
constexpr const char* kResultTag = "RESULT ";

using bench::median;

// ---- the worker: one rank of `mpirun -np N kiln-bench-distributed --worker` ----------------------

// Median seconds of one allreduce of `floats` float32 values.
double allreduce_seconds(int64_t floats, int repeats) {
  std::vector<float> buffer(static_cast<size_t>(floats), 1.0f);
  std::vector<double> times;
  for (int i = 0; i < repeats + 3; ++i) {  // three to warm up
    const double before = distributed::allreduce_seconds();
    distributed::allreduce_sum(buffer);
    if (i >= 3) times.push_back(distributed::allreduce_seconds() - before);
  }
  return median(times);
}

// Median epoch of `epochs` (the first is a warm-up), and the share of it in gradient allreduces.
json time_fit(Sequential& model, const Tensor& x, const Tensor& y, int64_t batch, int epochs) {
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  std::vector<double> epoch_seconds, allreduce_seconds;
  callbacks::LambdaCallback timer({
      .on_epoch_begin = [&](int, const Logs&) { allreduce_seconds.push_back(-distributed::allreduce_seconds()); },
      .on_epoch_end = [&](int, const Logs&) { allreduce_seconds.back() += distributed::allreduce_seconds(); },
  });
  const History history = model.fit(x, y, {.batch_size = batch, .epochs = epochs, .verbose = 0, .callbacks = {timer}, .shuffle = true});
  epoch_seconds = history.epoch_seconds;
  epoch_seconds.erase(epoch_seconds.begin());
  allreduce_seconds.erase(allreduce_seconds.begin());
  const int64_t steps = (x.rows() + batch - 1) / batch;
  return {{"epoch", median(epoch_seconds)},
          {"allreduce", median(allreduce_seconds)},
          {"steps", steps},
          {"samples", x.rows()},
          {"parameters", model.parameter_count()}};
}

// The dense model's epoch and the convnet's first convnet_steps batches (an epoch of 469 steps
// would take minutes here), timed by time_fit.
json time_models(int convnet_steps, int epochs) {
  set_random_seed(1);
  json result{{"ranks", distributed::size()}, {"threads", num_threads()}};
  datasets::TrainTest data = datasets::load_idx(datasets::kFashionMnistDir);
  Sequential dense = apps::make_model("dense", Shape{28, 28}, 10);
  result["dense"] = time_fit(dense, data.train.x, data.train.y, 64, epochs);
  const int64_t rows = std::min<int64_t>(data.train.x.rows(), int64_t{convnet_steps} * 128);
  std::vector<int64_t> first_rows(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) first_rows[static_cast<size_t>(r)] = r;
  Tensor x, y;
  data::gather_rows(data.train.x, first_rows, x);
  data::gather_rows(data.train.y, first_rows, y);
  Sequential convnet = apps::make_model("cnn", Shape{28, 28}, 10);
  result["convnet"] = time_fit(convnet, x, y, 128, epochs);
  return result;
}

int run_worker(int argc, char** argv, int convnet_steps, int epochs, bool allreduce_only) {
  distributed::Session session(argc, argv);
  std::vector<json> sizes;
  for (int64_t floats = 1; floats <= (int64_t{1} << 22); floats *= 8) {
    sizes.push_back({{"bytes", floats * 4}, {"seconds", allreduce_seconds(floats, floats < 65536 ? 200 : 20)}});
  }
  json result = allreduce_only ? json{{"ranks", distributed::size()}} : time_models(convnet_steps, epochs);
  result["allreduce"] = sizes;
  if (distributed::is_chief()) std::printf("%s%s\n", kResultTag, result.dump().c_str());
  return 0;
}

// ---- what an exact order would cost --------------------------------------------------------------

// For a 2-rank fit to give one process's weights bit for bit, whatever the rank count (up to 8),
// one process would have to sum each weight gradient over the batch as 8 fixed slices, each its own
// product, added in a fixed tree; the ranks would then hold whole subtrees and finish the tree.
// This times the first Dense layer's kernel gradient dW = x^T dz at batch 64 both ways: as
// kiln computes it (one product) and as 8 products of 8 rows whose results are added pairwise.
json exact_order_cost() {
  constexpr int64_t kBatch = 64, kInputs = 784, kUnits = 128, kSlices = 8, kRows = kBatch / kSlices;
  Tensor x(Shape{kBatch, kInputs}), dz(Shape{kBatch, kUnits}), dw(Shape{kInputs, kUnits});
  std::vector<Tensor> partials(kSlices, Tensor(Shape{kInputs, kUnits}));
  Rng rng(3);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(0, 1);
  for (int64_t i = 0; i < dz.size(); ++i) dz[i] = rng.uniform(-1, 1);
  auto time_median = [](const auto& work) {
    std::vector<double> times;
    for (int i = 0; i < 203; ++i) {
      const auto start = std::chrono::steady_clock::now();
      work();
      if (i >= 3) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return median(times);
  };
  const Tensor &inputs = x, &gradients = dz;
  const double one_product =
      time_median([&] { gemm(inputs.matrix(), Operand::Transposed, gradients.matrix(), Operand::AsIs, dw.matrix()); });
  const double sliced = time_median([&] {
    for (int64_t s = 0; s < kSlices; ++s) {
      const ConstMatrixMap x_rows(x.data() + s * kRows * kInputs, kRows, kInputs);
      const ConstMatrixMap dz_rows(dz.data() + s * kRows * kUnits, kRows, kUnits);
      gemm(x_rows, Operand::Transposed, dz_rows, Operand::AsIs, partials[s].matrix());
    }
    for (int64_t width = 1; width < kSlices; width *= 2) {
      for (int64_t s = 0; s + width < kSlices; s += 2 * width) partials[s].matrix() += partials[s + width].matrix();
    }
  });
  return {{"one_product", one_product}, {"eight_slices", sliced}};
}

// ---- the driver: runs the workers and prints the tables --------------------------------------------

// `mpirun_options` "" lets Open MPI choose the transport (shared memory between ranks on one
// machine); kTcpLoopback makes it use TCP over the loopback interface, as between machines.
constexpr const char* kTcpLoopback = "--mca btl self,tcp --mca btl_tcp_if_include lo";

json run_ranks(const std::string& self, int ranks, int convnet_steps, int epochs, const std::string& mpirun_options = "",
               bool allreduce_only = false) {
  // Open MPI refuses to start as root unless told to; CI and containers run as root.
  const std::string command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " + std::to_string(ranks) +
                              " --oversubscribe " + mpirun_options + " '" + self + "' --worker --convnet-steps " +
                              std::to_string(convnet_steps) + " --epochs " + std::to_string(epochs) +
                              (allreduce_only ? " --allreduce-only" : "") + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw Error("cannot run: " + command);
  std::array<char, 1 << 16> line{};
  std::string output;
  json result;
  while (fgets(line.data(), static_cast<int>(line.size()), pipe.get())) {
    const std::string text(line.data());
    if (text.starts_with(kResultTag)) {
      result = json::parse(text.substr(std::string(kResultTag).size()));
    } else {
      output += text;
    }
  }
  if (result.is_null()) throw Error("mpirun -np " + std::to_string(ranks) + " gave no result:\n" + output);
  return result;
}

// The ring model's latency and bandwidth from the smallest and the largest allreduce on N ranks.
struct Link {
  double latency, bandwidth;  // seconds per message, bytes per second
};
Link ring_link(const json& run) {
  const double ranks = run["ranks"];
  const json& sizes = run["allreduce"];
  const double small = sizes.front()["seconds"], large = sizes.back()["seconds"];
  const double large_bytes = sizes.back()["bytes"];
  return {small / (2 * (ranks - 1)), 2 * (ranks - 1) / ranks * large_bytes / (large - small)};
}

double ring_allreduce_seconds(const Link& link, double machines, double bytes) {
  if (machines <= 1) return 0;
  return 2 * (machines - 1) * link.latency + 2 * (machines - 1) / machines * bytes / link.bandwidth;
}

void print_projection(const std::string& name, const json& one_rank, const Link& link, const std::string& link_name) {
  // One machine's step: compute time for the job's batch; N machines compute batch / N each.
  const double steps = one_rank["steps"], samples = one_rank["samples"];
  const double step = static_cast<double>(one_rank["epoch"]) / steps;
  const double batch = samples / steps;
  const double bytes = 4.0 * static_cast<double>(one_rank["parameters"]);
  std::printf("\n%s, %s: a step of %.0f samples is %.2f ms on one machine; gradients %.0f KB\n", name.c_str(), link_name.c_str(),
              batch, step * 1e3, bytes / 1e3);
  std::printf("  %-9s %14s %14s %12s\n", "machines", "compute (ms)", "allreduce (ms)", "efficiency");
  for (double machines : {1.0, 2.0, 4.0, 8.0, 16.0}) {
    const double compute = step / machines, exchange = ring_allreduce_seconds(link, machines, bytes);
    std::printf("  %-9.0f %14.3f %14.3f %11.0f%%\n", machines, compute * 1e3, exchange * 1e3, 100 * compute / (compute + exchange));
  }
  // 80% on 8 machines: compute >= 4 x allreduce, with compute = (step / batch) x batch per machine.
  const double per_sample = step / batch;
  const double batch_per_machine = 4 * ring_allreduce_seconds(link, 8, bytes) / per_sample;
  std::printf("  80%% on 8 machines needs at least %.0f samples per machine (a job batch of %.0f)\n", batch_per_machine,
              8 * batch_per_machine);
}

int run(int argc, char** argv) {
  apps::Arguments arguments(kProgram, "Times distributed fit on 1 and 2 ranks (mpirun) and projects N machines.");
  arguments.add_option("convnet-steps", "N", "40", "convnet steps per epoch (batch 128)");
  arguments.add_option("epochs", "N", "3", "epochs per model, the first a warm-up; the median of the rest is reported");
  arguments.add_option("json", "PATH", "", "also write both runs' figures as JSON");
  arguments.add_switch("no-peer", "kiln alone, without PyTorch's DistributedDataParallel beside it");
  arguments.add_switch("allreduce-only", "with --worker: time the allreduces alone");
  arguments.add_switch("worker", "run as one rank of the measurement (the driver starts these under mpirun)");
  if (!arguments.parse(argc, argv)) return 0;
  const int convnet_steps = static_cast<int>(arguments.integer_in("convnet-steps", 1, 469));
  const int epochs = static_cast<int>(arguments.integer_in("epochs", 2, 100));
  if (!distributed::built_with_mpi()) throw Error("this kiln was built without MPI: configure with -DKILN_MPI=ON");
  if (arguments.flag("worker")) return run_worker(argc, argv, convnet_steps, epochs, arguments.flag("allreduce-only"));

  const std::string self = "/proc/" + std::to_string(getpid()) + "/exe";
  // mpirun binds each rank to a core, so one rank is one core; the plain process uses them all.
  const json one = run_ranks(self, 1, convnet_steps, epochs), two = run_ranks(self, 2, convnet_steps, epochs);
  const json two_tcp = run_ranks(self, 2, convnet_steps, epochs, kTcpLoopback, /*allreduce_only=*/true);
  const json threads = time_models(convnet_steps, epochs);
  const std::optional<bench::PeerRun> torch = arguments.flag("no-peer")
      ? std::nullopt
      : bench::run_torch_peer(kProgram, "torch_distributed.py",
                              "--convnet-steps " + std::to_string(convnet_steps) + " --epochs " + std::to_string(epochs));
  std::printf("kiln distributed fit, Fashion-MNIST, fit(x, y), median of %d epochs after a warm-up\n\n", epochs - 1);
  std::printf("%-34s %12s %12s %16s\n", "", "1 rank", "2 ranks", "1 process");
  std::printf("%-34s %12d %12d %16d\n", "threads per process", int(one["threads"]), int(two["threads"]), int(threads["threads"]));
  for (const char* model : {"dense", "convnet"}) {
    const json &a = one[model], &b = two[model], &c = threads[model];
    std::printf("%-34s %12.3f %12.3f %16.3f\n", (std::string(model) + " epoch (s, " + std::to_string(int(a["steps"])) + " steps)").c_str(),
                double(a["epoch"]), double(b["epoch"]), double(c["epoch"]));
    std::printf("%-34s %12.3f %12.3f\n", "  of which in allreduce (s)", double(a["allreduce"]), double(b["allreduce"]));
    std::printf("%-34s %12.1f %12.1f\n", "  allreduce per step (us)", 1e6 * double(a["allreduce"]) / double(a["steps"]),
                1e6 * double(b["allreduce"]) / double(b["steps"]));
    std::printf("%-34s %12s %12.2f\n", "  speed-up over 1 rank", "", double(a["epoch"]) / double(b["epoch"]));
    if (torch) {
      const double torch_one = torch->figures.numbers.at("processes.1." + std::string(model) + "_epoch");
      const double torch_two = torch->figures.numbers.at("processes.2." + std::string(model) + "_epoch");
      std::printf("%-34s %12.3f %12.3f\n", "  PyTorch DDP, gloo (s)", torch_one, torch_two);
      std::printf("%-34s %12.2f %12.2f\n", "  kiln / PyTorch", double(a["epoch"]) / torch_one, double(b["epoch"]) / torch_two);
    }
  }
  const json exact = exact_order_cost();
  const double dense_step = double(threads["dense"]["epoch"]) / double(threads["dense"]["steps"]);
  std::printf("\nexact order's cost, one process: the first Dense's dW at batch 64 takes %.1f us as one product, %.1f us "
              "as 8 slices added in a tree: +%.0f%% on a %.0f us step\n",
              1e6 * double(exact["one_product"]), 1e6 * double(exact["eight_slices"]),
              100 * (double(exact["eight_slices"]) - double(exact["one_product"])) / dense_step, 1e6 * dense_step);
  std::printf("\nMPI_Allreduce of float32 (median, us)\n%-12s %12s %14s %14s\n", "bytes", "1 rank", "2 ranks, shm",
              "2 ranks, TCP");
  for (size_t i = 0; i < one["allreduce"].size(); ++i) {
    std::printf("%-12.0f %12.1f %14.1f %14.1f\n", double(one["allreduce"][i]["bytes"]), 1e6 * double(one["allreduce"][i]["seconds"]),
                1e6 * double(two["allreduce"][i]["seconds"]), 1e6 * double(two_tcp["allreduce"][i]["seconds"]));
  }
  const Link shared_memory = ring_link(two), loopback = ring_link(two_tcp);
  std::printf("\nring model, 2 ranks: shared memory a = %.1f us, b = %.2f GB/s; TCP loopback a = %.1f us, b = %.2f GB/s\n",
              shared_memory.latency * 1e6, shared_memory.bandwidth / 1e9, loopback.latency * 1e6, loopback.bandwidth / 1e9);
  // Machines talk over a network: TCP over loopback has the protocol's costs without a wire's,
  // and a common cluster link (assumed, not measured here) adds the wire's.
  const Link ethernet{50e-6, 1.25e9};
  for (const char* model : {"dense", "convnet"}) {
    print_projection(model, one[model], loopback, "TCP loopback link (measured)");
    print_projection(model, one[model], ethernet, "10 Gb/s Ethernet (a = 50 us, b = 1.25 GB/s, assumed)");
  }
  if (const std::string path = arguments.text("json"); !path.empty()) {
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (!file) throw FileError("cannot write " + path);
    json all{{"one_rank", one}, {"two_ranks", two}, {"two_ranks_tcp", two_tcp}, {"one_process", threads}, {"exact_order", exact}};
    if (torch) all["torch"] = json::parse(torch->json);
    std::fprintf(file, "%s\n", all.dump(2).c_str());
    std::fclose(file);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
