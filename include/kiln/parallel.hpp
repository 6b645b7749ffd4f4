// kiln/parallel.hpp — how many threads the model's math uses, and when a loop is worth splitting.
//
// Forward and backward passes run on one OpenMP team: Eigen's GEMMs use it, and element-wise
// kernels split across it only past kParallelMinElements, below which waking the team costs more
// than the loop. Pipeline threads (the data side) set their own team to one thread.
#pragma once

#include <cstdint>

namespace kiln {

// Sets the OpenMP team size for the calling thread's parallel regions and Eigen's GEMMs.
// Other threads keep their own setting.
void set_num_threads(int threads);
int num_threads();

// Below this many elements an element-wise loop runs on one thread.
inline constexpr int64_t kParallelMinElements = 1 << 15;

}  // namespace kiln
