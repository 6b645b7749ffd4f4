// DenormalsFlushedToZero: the FTZ and DAZ bits of x86's MXCSR register, which is per thread, set on
// the caller and put back as they were. The team's helpers take the caller's mode with each loop
// (parallel.cpp), so they compute as it does.
#include "kiln/denormals.hpp"

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
thread_local unsigned saved_mode = 0;

void flush_on_this_thread() {
#ifdef KILN_HAS_MXCSR
  saved_mode = _mm_getcsr();
  _mm_setcsr(saved_mode | kFlushBits);
#endif
}

void restore_on_this_thread() {
#ifdef KILN_HAS_MXCSR
  _mm_setcsr(saved_mode);
#endif
}

}  // namespace

DenormalsFlushedToZero::DenormalsFlushedToZero() : outermost_(scope_depth++ == 0) {
  if (outermost_) flush_on_this_thread();
}

DenormalsFlushedToZero::~DenormalsFlushedToZero() {
  --scope_depth;
  if (outermost_) restore_on_this_thread();
}

bool denormals_flushed_to_zero() {
#ifdef KILN_HAS_MXCSR
  return (_mm_getcsr() & kFlushBits) == kFlushBits;
#else
  return false;
#endif
}

}  // namespace kiln
