// Thread-count control for OpenMP and Eigen.
#include "kiln/parallel.hpp"

#include "kiln/error.hpp"

#include <omp.h>

#include <string>

namespace kiln {

void set_num_threads(int threads) {
  if (threads < 1) throw ValueError("the thread count must be at least 1, got " + std::to_string(threads));
  // Only OpenMP's per-thread setting: Eigen then sizes its GEMM team from omp_get_max_threads()
  // on the calling thread. Eigen::setNbThreads would be one global for every thread, and would
  // make the pipeline's threads (which ask for one thread each) run their math on the full team.
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace kiln
