// DenormalsFlushedToZero: the FTZ and DAZ bits of x86's MXCSR register, which is per thread, set on
// the caller and on each thread of its OpenMP team, and put back as each one was.
#include "kiln/denormals.hpp"

#include <omp.h>

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define KILN_HAS_MXCSR 1
#endif

namespace kiln {
namespace {

#ifdef KILN_HAS_MXCSR
constexpr unsigned kFlushToZero = 0x8000;      // MXCSR bit 15: denormal results become zero
constexpr unsigned kDenormalsAreZero = 0x0040;  // MXCSR bit 6: denormal inputs are read as zero
constexpr unsigned kFlushBits = kFlushToZero | kDenormalsAreZero;
#endif

// Per thread: how many scopes the thread has entered as a caller, and the mode to restore.
thread_local int scope_depth = 0;
thread_local bool has_saved_mode = false;
thread_local unsigned saved_mode = 0;

void flush_on_this_thread() {
#ifdef KILN_HAS_MXCSR
  saved_mode = _mm_getcsr();
  has_saved_mode = true;
  _mm_setcsr(saved_mode | kFlushBits);
#endif
}

// A thread that joined the team after the scope began has no mode of its own saved: if the scope
// created it, it inherited the caller's flushed mode, and gets the caller's original instead.
void restore_on_this_thread([[maybe_unused]] unsigned caller_mode) {
#ifdef KILN_HAS_MXCSR
  _mm_setcsr(has_saved_mode ? saved_mode : caller_mode);
  has_saved_mode = false;
#endif
}

}  // namespace

DenormalsFlushedToZero::DenormalsFlushedToZero() : outermost_(scope_depth++ == 0) {
  if (!outermost_) return;
  // The team's threads persist between parallel regions (libgomp keeps them in a pool), so
  // setting their mode once here holds for every region the scope runs. Thread 0 is the caller,
  // flushed last: a thread this region creates copies the caller's mode, and must save the
  // caller's mode from before the scope, not the flushed one, to restore at its end.
  team_size_ = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (team_size_ > 1) {
#pragma omp parallel num_threads(team_size_)
    if (omp_get_thread_num() != 0) flush_on_this_thread();
  }
  flush_on_this_thread();
}

DenormalsFlushedToZero::~DenormalsFlushedToZero() {
  --scope_depth;
  if (!outermost_) return;
  const unsigned caller_mode = saved_mode;
  // The team may have been resized inside the scope (set_num_threads in a callback): reach every
  // thread it had.
  const int team_size = omp_in_parallel() ? 1 : std::max(team_size_, omp_get_max_threads());
  if (team_size > 1) {
#pragma omp parallel num_threads(team_size)
    if (omp_get_thread_num() != 0) restore_on_this_thread(caller_mode);
  }
  restore_on_this_thread(caller_mode);
}

bool denormals_flushed_to_zero() {
#ifdef KILN_HAS_MXCSR
  return (_mm_getcsr() & kFlushBits) == kFlushBits;
#else
  return false;
#endif
}

}  // namespace kiln
