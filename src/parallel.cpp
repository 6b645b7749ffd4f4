// Thread-count control for OpenMP and Eigen.
#include "kiln/parallel.hpp"

#include "kiln/error.hpp"

#include <Eigen/Core>
#include <omp.h>

#include <string>

namespace kiln {

void set_num_threads(int threads) {
  if (threads < 1) throw ValueError("the thread count must be at least 1, got " + std::to_string(threads));
  omp_set_num_threads(threads);
  Eigen::setNbThreads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace kiln
