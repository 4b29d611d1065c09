#pragma once
// The two directions between a round's LocalTrainOptions and a client's Assignment: the server
// writes an assignment from the options it would train a simulated client with, and the
// client trains with the options read back from it, so both train alike.
// Internal to fl/ (torch types).
#include <cstdint>
#include <string>
#include <vector>

#include "fl/assignment.h"
#include "fl/training.h"

namespace mufl::fl {

// The Assignment a client trains for `options` and `seed` in a model with these heads (the
// input and labels keep their defaults: the caller sets them).
Assignment make_assignment(const std::vector<std::string>& tasks, const std::vector<std::string>& heads,
                           const LocalTrainOptions& options, uint64_t seed);

// The options an assignment trains with.
LocalTrainOptions local_options(const Assignment& a);

}  // namespace mufl::fl
