// The few MPI calls kiln makes, behind distributed.hpp. Built with KILN_MPI they go to MPI's
// MPI_COMM_WORLD; built without it, there is one rank and nothing to exchange.
#include "kiln/distributed.hpp"

#include "kiln/error.hpp"
#include "kiln/random.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>

#if KILN_MPI
#include <mpi.h>
#endif

namespace kiln::distributed {
namespace {

int this_rank = 0;
int rank_count = 1;
bool session_alive = false;
double seconds_in_allreduce = 0.0;
int no_argc = 0;  // what Session() passes on: MPI takes no arguments from it
char** no_argv = nullptr;

// Adds the time of one exchange to allreduce_seconds().
class AllreduceTimer {
 public:
  AllreduceTimer() : start_(std::chrono::steady_clock::now()) {}
  ~AllreduceTimer() { seconds_in_allreduce += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int rank() { return this_rank; }
int size() { return rank_count; }
double allreduce_seconds() { return seconds_in_allreduce; }

#if KILN_MPI

bool built_with_mpi() { return true; }

Session::Session(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (session_alive || initialized) throw Error("distributed::Session: MPI is already started; hold one Session at a time");
  // FUNNELED: only the thread that created the Session (the one that fits) calls MPI.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &this_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &rank_count);
  session_alive = true;
  seconds_in_allreduce = 0.0;
  // Every rank continues rank 0's random sequence: the same initial weights, shuffles and
  // dropout seeds, whether or not the program set a seed (on every rank alike, as it should).
  uint64_t state = random_state();
  MPI_Bcast(&state, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  set_random_seed(state);
}

Session::Session() : Session(no_argc, no_argv) {}

Session::~Session() {
  session_alive = false;
  this_rank = 0;
  rank_count = 1;
  MPI_Finalize();
}

void allreduce_sum(std::span<float> values) {
  const AllreduceTimer timer;
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void allreduce_sum(std::span<double> values) {
  const AllreduceTimer timer;
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int allreduce_min(int value) {
  int smallest = value;
  MPI_Allreduce(&value, &smallest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return smallest;
}

void broadcast(std::span<float> values, int root) {
  MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_FLOAT, root, MPI_COMM_WORLD);
}

void broadcast(std::string& text, int root) {
  int length = static_cast<int>(text.size());
  MPI_Bcast(&length, 1, MPI_INT, root, MPI_COMM_WORLD);
  text.resize(static_cast<size_t>(length));
  MPI_Bcast(text.data(), length, MPI_CHAR, root, MPI_COMM_WORLD);
}

void abort_all(const std::string& message) {
  std::cout.flush();
  std::cerr << "kiln: rank " << this_rank << " of " << rank_count << ": " << message << std::endl;
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);  // MPI_Abort does not return; this is for the compiler
}

#else  // one process, no MPI

bool built_with_mpi() { return false; }

Session::Session(int&, char**&) {
  throw Error("distributed::Session: this kiln was built without MPI; install libopenmpi-dev and openmpi-bin, "
              "configure with -DKILN_MPI=ON and rebuild");
}
Session::Session() : Session(no_argc, no_argv) {}
Session::~Session() = default;

void allreduce_sum(std::span<float>) {}
void allreduce_sum(std::span<double>) {}
int allreduce_min(int value) { return value; }
void broadcast(std::span<float>, int) {}
void broadcast(std::string&, int) {}

void abort_all(const std::string& message) {
  std::cout.flush();
  std::cerr << "kiln: " << message << std::endl;
  std::_Exit(1);
}

#endif

}  // namespace kiln::distributed
