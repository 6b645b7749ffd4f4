// apps/common/distributed_run.hpp — --distributed: run as one rank of an MPI job,
//   mpirun -np 2 kiln-mnist --distributed
// Every rank trains on its shard of each batch (idx_batches.hpp); rank 0 alone prints and writes
// files. Run without mpirun, --distributed is a job of one rank: plain training.
#pragma once

#include "arguments.hpp"

#include <kiln/kiln.hpp>

#include <cstdio>
#include <optional>
#include <string>

namespace kiln::apps {

inline void add_distributed_option(Arguments& arguments) {
  arguments.add_switch("distributed", "train as one rank of an MPI job (mpirun -np N ...); --batch-size is the job's");
}

// Holds the job's MPI session when --distributed asks for one. On ranks other than 0, standard
// output goes to /dev/null, so the job prints its progress once; errors still reach stderr.
inline void start_distributed_if_requested(const Arguments& arguments, std::optional<distributed::Session>& session,
                                           int& argc, char**& argv) {
  if (!arguments.flag("distributed")) return;
  session.emplace(argc, argv);
  if (!distributed::is_chief()) std::freopen("/dev/null", "w", stdout);
}

// The job's batch size must share out evenly between the ranks (training_batches gives each
// rank batch_size / size()).
inline void check_batch_size_shares_evenly(int64_t batch_size) {
  const int64_t ranks = distributed::size();
  if (batch_size % ranks != 0) {
    throw ArgumentError("--batch-size " + std::to_string(batch_size) + " is the job's batch and must be shared evenly by " +
                        std::to_string(ranks) + " ranks; give a multiple of " + std::to_string(ranks));
  }
}

}  // namespace kiln::apps
