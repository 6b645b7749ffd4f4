// kiln/denormals.hpp — the model computes with denormal floats flushed to zero, as TensorFlow's
// CPU threads do.
//
// A denormal is a float below 2^-126 in magnitude, kept with fewer bits of precision. On x86 an
// operation that reads or produces one leaves the fast path for a microcode assist, tens of times
// slower. Training makes them without anyone asking: a weight whose gradient is always zero (the
// blank border pixels of MNIST-like images feed such weights) has Adam's first moment decaying by
// beta_1 per step, through the denormal range on its way to zero, and every step's update of it
// takes the slow path. Flushing them costs nothing in accuracy a model can notice: the values
// are below 1e-38.
//
// Sequential's fit, evaluate and predict hold a DenormalsFlushedToZero for their whole run (one
// scope, not one per batch), so the callbacks and dataset functions that run on the calling thread
// meanwhile see it too; train_on_batch and forward hold one when called on their own. The team's
// helpers compute in the mode of the thread whose loop they run. Pipeline threads, and every
// thread outside these calls, keep the mode they had.
#pragma once

namespace kiln {

// While alive, the calling thread (and so the helpers running its loops) flushes denormal results
// to zero (FTZ) and reads denormal inputs as zero (DAZ); the destructor restores its previous mode. Nested scopes on one thread cost nothing: only
// the outermost sets and restores. A no-op on CPUs other than x86.
class DenormalsFlushedToZero {
 public:
  DenormalsFlushedToZero();
  ~DenormalsFlushedToZero();
  DenormalsFlushedToZero(const DenormalsFlushedToZero&) = delete;
  DenormalsFlushedToZero& operator=(const DenormalsFlushedToZero&) = delete;

 private:
  bool outermost_;
};

// Whether the calling thread flushes denormals now.
bool denormals_flushed_to_zero();

}  // namespace kiln
