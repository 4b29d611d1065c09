#pragma once
// The worker protocol's wire format (issue 16): mufld sends a mufl-worker the JobConfig of the
// group rounds it is to run, and the worker sends back a RoundReport per round, both as JSON
// objects over HTTP. Torch-free header and source, so mufld's torch-free parts can speak it.
//
// The JSON is an API between two processes: field names, their types and the enum names below
// must never be renamed or retyped. A JSON key is the C++ field's name (fl/fl_job.h). Reading is
// strict: a key the reader does not know is refused, so adding a field is a protocol change that
// both ends take up together.
//
// Numbers on the wire:
//  - int64 and int fields are JSON integers (a float such as 2.0, a bool or a string is refused);
//    an int field (affinity_every, max_round_attempts, attempts) must fit in an int.
//  - JobConfig::seed is a decimal string ("18446744073709551615"), as in fl/assignment.h: many
//    JSON readers keep only 53 bits of a number.
//  - double fields are JSON numbers (an integer such as 1 is accepted), and must be finite.
//    nlohmann writes the shortest text that reads back to the same double, so a round trip
//    through dump() and parse() is exact.
//  - Non-finite doubles (NaN, ±inf) cannot be represented in JSON. The *_to_json functions do
//    not check for them: the json they return holds them as they are, and dump() writes them
//    as null. Either way the *_from_json functions refuse them, naming the field. A sender must
//    therefore not send them: a worker whose round diverged reports an error instead of a
//    report (FlJob::run_round already fails such a round with kFailedPrecondition).
//
// Errors: every *_from_json failure is kInvalidArgument with one FieldError naming the first bad
// field as a path: "schema.labels", "tasks[1]", "eval[2].loss", "affinity[0][1]"; the whole
// value is "job" or "report" when it is not an object.
//
// Thread safety: plain functions of their arguments.
#include <nlohmann/json.hpp>

#include "core/result.h"
#include "fl/fl_job.h"

namespace mufl::fl {

// JobConfig as JSON: every field of JobConfig under its own name, with
//   "schema": {"channels", "height", "width", "labels"}  (integers)
//   "encoder_gradient": "mean" | "sum"
//   "balance": "none" | "cap" | "cap_merged" | "cap_equal" | "by_kind"
//   "seed": "<decimal uint64>"
//   "tasks", "heads", "final_heads": arrays of strings
// and every other field a string, integer or number as its C++ type says.
nlohmann::json job_config_to_json(const JobConfig& config);

// The JobConfig that job_config_to_json wrote: job_config_from_json(job_config_to_json(c))
// equals c in every field. Refuses (kInvalidArgument, naming the field) anything that is not an
// object, a missing field, an unknown key (at the top or in "schema"), a value of the wrong JSON
// type, an integer out of its field's range, a non-finite number, an unknown enum name, and a
// seed that is not a decimal uint64. It checks the wire format only, not whether the job makes
// sense (rounds ≥ 1, heads matching tasks, ...): FlJob::create does that.
Result<JobConfig> job_config_from_json(const nlohmann::json& j);

// RoundReport as JSON: every field of RoundReport under its own name, with
//   "eval": [{"head", "task", "loss", "metric", "value"}]  (TaskMetrics, in order)
//   "clusters": [{"clients": [int], "samples", "clients_reported", "eval": [as above]}]
//               (ClusterReport, in order; [] without client clustering)
//   "affinity": [[number]]  (rows; [] when the lookahead was off)
//   "alignment": {head key: number}  ({} when not measured)
//   "stopped": bool
nlohmann::json round_report_to_json(const RoundReport& report);

// The RoundReport that round_report_to_json wrote, equal in every field. Refuses, as
// job_config_from_json does, a non-object, a missing field, an unknown key (at the top or in an
// eval entry), a wrong JSON type, an out-of-range integer and a non-finite number, and also:
//  - round or attempts below 1 (run_round's reports count both from 1, stopped ones included);
//  - a negative count or measure: clients_sampled, clients_reported, clients_dropped, samples,
//    lookaheads, affinity_seconds, seconds, client_wait_seconds, client_joules;
//  - an affinity that is neither empty nor square, or whose side is smaller than eval's size.
//    (A catalog job's side equals eval's size; on a federation, eval leaves out the heads no
//    client evaluated, so it may be shorter than the K×K matrix.)
//  - an alignment that is not an object of numbers in [-1, 1];
//  - client_meters other than "" or '+'-joined meter names among "model", "nvml", "rapl".
// train_loss, learning_rate and the eval entries' loss and value may be any finite number;
// an eval entry's metric is any string (fl/tasks.h names them).
Result<RoundReport> round_report_from_json(const nlohmann::json& j);

}  // namespace mufl::fl
