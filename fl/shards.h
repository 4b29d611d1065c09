#pragma once
// The simulated clients' data of a job on a catalog data set: which samples each holds, and
// those samples written out as each client's own data directory (fl/client_data.h), so that
// real mufl-client processes can hold exactly what simulation would give them
// (scripts/make-shards). Internal to fl/ (torch types).
#include <string>

#include "core/result.h"
#include "fl/datasets.h"
#include "fl/fl_job.h"
#include "fl/partition.h"

namespace mufl::fl {

// Rows `rows` of `set`, in that order, as a client's safetensors part (fl/client_data.h:
// "images" F32 [N,C,H,W], "labels" F32 [N]).
Result<std::string> encode_client_part(const ImageSet& set, const std::vector<int64_t>& rows);

// The samples each simulated client of `config` holds (indices into `train`), drawn from the
// job's seed. kInvalidArgument for an unknown partition or a client left with no sample.
Result<Partition> make_partition(const JobConfig& config, const ImageSet& train);

// Writes <out_dir>/client-<i>/train.safetensors for every client i of `config` (its samples of
// the training set, in ascending index order, as simulation trains them) and
// <out_dir>/client-<i>/test.safetensors (an even, seeded share of the test set: its held-out
// part). kNotFound when the data set's files are missing; kInternal when a file cannot be written.
Status write_client_shards(const JobConfig& config, const RuntimeOptions& options, const std::string& out_dir);

}  // namespace mufl::fl
