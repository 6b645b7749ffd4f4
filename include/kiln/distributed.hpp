// kiln/distributed.hpp — one training job in several processes (MPI ranks), data-parallel.
//
// Start the program under mpirun and hold a distributed::Session for as long as it trains:
//
//   int main(int argc, char** argv) {
//     kiln::distributed::Session session(argc, argv);  // MPI_Init; MPI_Finalize when it ends
//     ...build and compile the same model on every rank...
//     model.fit(x, y, {.batch_size = 128});            // 128 samples a step in all, shared out
//   }
//
// While a Session of more than one rank is alive, fit and evaluate are distributed (see
// docs/scale-out.md): every rank starts from rank 0's weights and random state, trains on its
// share of each batch (arrays) or on its own batches (a dataset, typically .shard(size(), rank())),
// and one allreduce per step gives every rank the same averaged gradient, so every rank applies
// the same update. Logs are averaged over the ranks, weighted by their samples; only rank 0 shows
// the progress bar, and kiln's callbacks write files on rank 0 only.
//
// kiln talks MPI only when configured with -DKILN_MPI=ON (Open MPI from Debian's libopenmpi-dev).
// Without it, rank() is 0, size() is 1, and a Session explains how to rebuild.
#pragma once

#include <span>
#include <string>

namespace kiln::distributed {

// True when this kiln was built with MPI (KILN_MPI=ON).
bool built_with_mpi();

// MPI for this process's lifetime: MPI_Init_thread on construction (only the thread that fits
// calls MPI; pipeline threads never do), MPI_Finalize on destruction. One at a time. Also gives
// every rank rank 0's random state, so a program that sets no seed still builds one model on
// every rank.
class Session {
 public:
  Session(int& argc, char**& argv);
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// This process's rank, 0 to size() - 1, and the number of ranks; 0 and 1 without a Session.
int rank();
int size();
// True when a Session of more than one rank is alive: fit and evaluate then work together.
inline bool active() { return size() > 1; }
// The rank that prints and writes files.
inline bool is_chief() { return rank() == 0; }

// Every rank's values summed, in place, on every rank. Each rank must call with the same length.
void allreduce_sum(std::span<float> values);
void allreduce_sum(std::span<double> values);
// The smallest of every rank's value.
int allreduce_min(int value);
// True on every rank when `value` is true on some rank.
inline bool any_rank(bool value) { return allreduce_min(value ? 0 : 1) == 0; }
// Root's values copied to every rank.
void broadcast(std::span<float> values, int root = 0);
void broadcast(std::string& text, int root = 0);
// Seconds this process has spent inside allreduce_sum since the Session started.
double allreduce_seconds();

// Prints "kiln: rank R of N: <message>" on stderr and ends every rank (MPI_Abort): for an error
// that happens on one rank only, where the others would otherwise wait for it forever.
[[noreturn]] void abort_all(const std::string& message);

}  // namespace kiln::distributed
