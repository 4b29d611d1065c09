// Executor, the part that turns a group's trusted checkpoints back into a job
// (scheduler/executor.h, "Crash safety"): the newest good one, else the one before it with the
// round after it redone, and the pruning of files no transaction trusts any more.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "scheduler/executor.h"

namespace mufl::scheduler {
namespace {

bool is_checkpoint_file(const std::string& name) {
  // checkpoint-<round>.pt, the checkpoint.pt of older versions, and temp files of either.
  return name.rfind("checkpoint", 0) == 0 || name.rfind(".checkpoint", 0) == 0;
}

}  // namespace

Result<std::unique_ptr<TrainingJob>> Executor::load_job(GroupRun& g) {
  if (g.group.heads.empty()) return std::unique_ptr<TrainingJob>();  // nothing trained yet
  auto checkpoints = store_.list_group_checkpoints(g.group.id);
  if (!checkpoints.ok()) return checkpoints.status();
  if (checkpoints->empty())  // recorded before the table existed
    checkpoints->push_back({{g.group.round, g.group.checkpoint_path, g.group.checkpoint_sha256, 0},
                            g.group.heads,
                            g.group.job_round_offset});
  std::string damaged;
  for (size_t i = 0; i < checkpoints->size(); ++i) {
    const storage::GroupCheckpoint& cp = (*checkpoints)[i];
    auto job = open_checkpoint(g, cp);
    if (job.ok()) {
      if (cp.file.round == g.group.round) return job;
      if (i == 1) return redo_newest(g, std::move(*job), cp, checkpoints->front());
    } else if (job.status().is_transient()) {
      return job.status();  // the disk, not the file: try again later
    }
    if (!job.ok()) {
      spdlog::warn("group {}: checkpoint of round {} is not usable: {}", g.group.id, cp.file.round,
                   job.status().message());
      damaged += (damaged.empty() ? "" : "; ") + job.status().message();
    }
    if (i == 1) break;  // only the newest two are trusted
  }
  return Status::failed_precondition("no usable checkpoint to resume from after round " +
                                     std::to_string(g.group.round) + " (" + damaged + ")");
}

Result<std::unique_ptr<TrainingJob>> Executor::open_checkpoint(GroupRun& g, const storage::GroupCheckpoint& cp) {
  auto bytes = env().read(cp.file.path);
  if (!bytes.ok()) {
    if (bytes.status().is_not_found()) return Status::not_found("checkpoint file of round " +
                                                                std::to_string(cp.file.round) + " is missing");
    return bytes.status();
  }
  if (sha256_hex(*bytes) != cp.file.sha256)
    return Status::invalid_argument("checkpoint file of round " + std::to_string(cp.file.round) +
                                    " is damaged (its SHA-256 is not the recorded one)");
  auto job = g.backend->create(job_config(g.group, cp.heads, cp.job_round_offset), g.runtime);
  if (!job.ok()) return Status::invalid_argument("cannot build the model: " + job.status().message());
  if (Status s = (*job)->restore(*bytes); !s.is_ok())
    return Status::invalid_argument("cannot restore the checkpoint of round " + std::to_string(cp.file.round) + ": " +
                                    s.message());
  if ((*job)->rounds_done() + cp.job_round_offset != cp.file.round)
    return Status::invalid_argument("the checkpoint file is not of round " + std::to_string(cp.file.round));
  return job;
}

Result<std::unique_ptr<TrainingJob>> Executor::redo_newest(GroupRun& g, std::unique_ptr<TrainingJob> job,
                                                           const storage::GroupCheckpoint& from,
                                                           const storage::GroupCheckpoint& newest) {
  spdlog::warn("group {}: falls back to its checkpoint of round {} and redoes round {}", g.group.id, from.file.round,
               newest.file.round);
  // The newest checkpoint's job is the older one carried on, or one derived from it at the
  // older round (a join or a leave): every draw is seeded, so the redone round is the same.
  if (newest.job_round_offset != from.job_round_offset) {
    auto derived = g.backend->derive(*job, job_config(g.group, newest.heads, newest.job_round_offset), g.runtime);
    if (!derived.ok()) return Status::invalid_argument("cannot redo round: " + derived.status().message());
    job = std::move(*derived);
  }
  auto report = job->run_round([&] { return g.run->stop.load(std::memory_order_relaxed); });
  if (!report.ok()) return report.status();
  if (report->stopped) return Status::unavailable("stopped while redoing round " + std::to_string(newest.file.round));
  if (report->round != newest.file.round)
    return Status::invalid_argument("the redone round is " + std::to_string(report->round) + ", not " +
                                    std::to_string(newest.file.round));
  auto bytes = job->checkpoint();
  if (!bytes.ok()) return bytes.status();
  storage::GroupCheckpoint redone = newest;
  redone.file.sha256 = sha256_hex(*bytes);
  redone.file.bytes = static_cast<int64_t>(bytes->size());
  if (Status s = write_file_durably(env(), redone.file.path, *bytes); !s.is_ok()) return s;
  if (Status s = store_.replace_group_checkpoint(g.group.id, redone, now_ms()); !s.is_ok()) return s;
  g.group.checkpoint_sha256 = redone.file.sha256;
  return job;
}

void Executor::prune_checkpoints(const std::string& group_id, const std::set<std::string>& keep) {
  const std::string dir = group_dir(group_id);
  auto names = env().list(dir);
  if (!names.ok()) {
    spdlog::warn("group {}: cannot prune old checkpoints: {}", group_id, names.status().message());
    return;
  }
  for (const std::string& name : *names) {
    const std::string path = dir + "/" + name;
    if (!is_checkpoint_file(name) || keep.count(path)) continue;
    if (Status s = env().remove(path); !s.is_ok()) spdlog::warn("group {}: {}", group_id, s.message());
  }
}

void Executor::drop_client_states(const std::string& group_id) {
  const std::string dir = group_dir(group_id) + "/clients";
  auto names = env().list(dir);
  if (!names.ok()) {
    spdlog::warn("group {}: cannot remove its client states: {}", group_id, names.status().message());
    return;
  }
  for (const std::string& name : *names)
    if (Status s = env().remove(dir + "/" + name); !s.is_ok()) spdlog::warn("group {}: {}", group_id, s.message());
  if (Status s = env().remove(dir); !s.is_ok()) spdlog::warn("group {}: {}", group_id, s.message());
}

}  // namespace mufl::scheduler
