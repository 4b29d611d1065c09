#pragma once
// FlJob helpers shared by the fl tests (tests/fl/*_job_test.cpp, affinity_test.cpp). Include
// before tests/support/catch_over_torch.h.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "fl/fl_job.h"

namespace mufl::fl::job_support {

// The job `c` describes; REQUIREs that FlJob::create accepts it.
inline std::unique_ptr<FlJob> make(const JobConfig& c) {
  auto job = FlJob::create(c, RuntimeOptions{});
  REQUIRE(job.ok());
  return std::move(*job);
}

// Whether `made` was refused with a field error naming `field`.
inline bool names_field(const Result<std::unique_ptr<FlJob>>& made, const std::string& field) {
  if (made.ok()) return false;
  const Status why = made.status();  // kept: a loop over a temporary's part dangles
  for (const auto& e : why.field_errors())
    if (e.field == field) return true;
  return false;
}

}  // namespace mufl::fl::job_support
