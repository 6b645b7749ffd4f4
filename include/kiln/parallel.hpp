// kiln/parallel.hpp — how many threads the model's math uses, and when a loop is worth splitting.
//
// Forward and backward passes run on one OpenMP team: Eigen's GEMMs use it, and element-wise
// kernels split across it only past kParallelMinElements, below which waking the team costs more
// than the loop. Pipeline threads (the data side) set their own team to one thread.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace kiln {

// Sets the OpenMP team size for the calling thread's parallel regions and Eigen's GEMMs.
// Other threads keep their own setting.
void set_num_threads(int threads);
int num_threads();

// Below this many elements an element-wise loop runs on one thread.
inline constexpr int64_t kParallelMinElements = 1 << 15;

// Runs body(begin, end) over [0, count): when `split` is true, once per thread of the team, each
// on its own contiguous share; otherwise (or when the team is one thread) once, body(0, count),
// on the calling thread.
//
// Why not `#pragma omp parallel for if (split)`: a region whose `if` is false still has libgomp
// set up a team of one, about 0.25 us here, a third of the time ReLU's backward pass over W1's
// 64x128 activations takes. Here the small case is a plain call.
template <class Body>
void for_each_share(int64_t count, bool split, const Body& body) {
  if (!split || omp_get_max_threads() == 1) {
    body(int64_t{0}, count);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), share = (count + threads - 1) / threads;
    const int64_t begin = std::min(count, omp_get_thread_num() * share);
    body(begin, std::min(count, begin + share));
  }
}

}  // namespace kiln
