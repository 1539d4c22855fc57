/**
 * Stopping a long run from outside, as faiss::InterruptCallback does for
 * FAISS: a process-wide hook polled between EM and k-means iterations.
 * The Python binding installs one that checks for Ctrl-C, so a fit ends at
 * the next iteration boundary with KeyboardInterrupt; the model then keeps
 * the state of the last complete iteration and checkpoints stay whole
 * (they are written by rename).
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <functional>

namespace faiss_gmm {

/** Thrown by check_interrupted() when the installed hook asks to stop. */
class Interrupted : public Error {
   public:
    Interrupted() : Error("faiss-gmm: interrupted") {}
};

/**
 * Install the hook (true: stop now); an empty function removes it.
 * Polled on the thread that runs the fit. With MPI every rank must see the
 * same answer, or the ranks part in a collective: the CLI installs none.
 */
void set_interrupt_callback(std::function<bool()> callback);

/** Throw Interrupted when a hook is installed and returns true. */
void check_interrupted();

}  // namespace faiss_gmm
