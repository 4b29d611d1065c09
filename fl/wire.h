#pragma once
// A model's weights as the wire format carries them (protocol/safetensors.h,
// docs/wire-format.md): one F32 tensor per parameter, named as weight_names() names it.
// Internal to fl/ (torch types).
#include <string>

#include "core/result.h"
#include "core/status.h"
#include "fl/model.h"
#include "protocol/safetensors.h"

namespace mufl::fl {

// Every parameter of `model`, in parameters() order, as F32 on the CPU, with `metadata`.
protocol::TensorFile to_tensor_file(MultiTaskNet& model, const std::map<std::string, std::string>& metadata = {});

// The names and shapes `model` expects of a file (what check_tensors compares with).
std::vector<protocol::TensorSpec> tensor_specs(MultiTaskNet& model);

// The parameters of `file`, in `model`'s parameters() order and on its device, after
// check_tensors: kInvalidArgument naming the first missing, extra or misshapen tensor. The
// model itself is not changed.
Result<Weights> weights_from(const protocol::TensorFile& file, MultiTaskNet& model);

}  // namespace mufl::fl
