#pragma once
// Torch-free, so that fl/fl_job.h (which the rest of mufl includes) can name it.

namespace mufl::fl {

// How a multi-head step combines the tasks' gradients in the shared encoder (each head always
// gets its own task's full gradient). kMean: the encoder gets their mean, so its step does not
// grow with the number of heads — the merged phase, whose heads were not chosen for each other
// (five summed losses diverged). kSum: it gets their sum, so each task moves the encoder as far as
// it would alone — for a group born of a split, whose tasks were grouped because their updates
// lower each other's losses (bench/mufl, docs/merge-and-split.md: total test loss 0.1955 against 0.2276 with the mean).
enum class EncoderGradient { kMean, kSum };

}  // namespace mufl::fl
