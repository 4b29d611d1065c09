#include "scheduler/cluster/slurm_client.h"

#include <sstream>

#include "core/strings.h"
#include "core/subprocess.h"

namespace mufl::scheduler {
namespace {

// sbatch's answers that the same request meets again (a GRES, partition, account or node the
// cluster does not have): kFailedPrecondition, so the group fails with Slurm's words instead of
// waiting for a cluster that will never take it. Anything else stays as it was (kUnavailable:
// slurmctld down or busy, worth a retry).
Status refused_for_good(const Status& s) {
  static const char* kForGood[] = {"Invalid generic resource", "Invalid partition", "Invalid account",
                                   "Invalid node name", "Requested node configuration is not available",
                                   "Invalid qos", "Invalid feature specification"};
  if (s.code() == Status::Code::kUnavailable)
    for (const char* words : kForGood)
      if (s.message().find(words) != std::string::npos) return Status::failed_precondition(s.message());
  return s;
}

class SlurmCli : public SlurmClient {
 public:
  explicit SlurmCli(SlurmCliOptions options) : options_(std::move(options)) {}

  Result<std::vector<SlurmNode>> nodes() override {
    std::vector<std::string> argv = {"sinfo", "--Node", "--noheader", "--Format", kSinfoFormat};
    if (!options_.partition.empty()) argv.push_back("--partition=" + options_.partition);
    auto out = run(argv);
    if (!out.ok()) return out.status();
    return parse_sinfo_nodes(*out);
  }

  Result<std::string> submit(const SlurmJobSpec& job) override {
    ProcessOptions o;
    o.timeout_ms = options_.timeout_ms;
    o.stdin_data = job.script;
    o.env = job.env;
    auto out = run(sbatch_arguments(job), o);
    if (!out.ok()) return refused_for_good(out.status());
    // --parsable: "<job id>" or "<job id>;<cluster>".
    std::string id = out->substr(0, out->find_first_of(";\n"));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
      return Status::invalid_argument("sbatch: no job id in its answer '" + *out + "'");
    return id;
  }

  Status cancel(const std::string& job_id) override {
    auto out = run({"scancel", job_id});
    return out.ok() ? Status::ok() : out.status();
  }

  Result<std::vector<SlurmJobState>> jobs(const std::string& name_prefix) override {
    auto out = run({"squeue", "--me", "--noheader", "--format", kSqueueFormat});
    if (!out.ok()) return out.status();
    return parse_squeue(*out, name_prefix);
  }

 private:
  // The command's stdout when it exits 0; kUnavailable with its stderr otherwise.
  Result<std::string> run(const std::vector<std::string>& argv, ProcessOptions o = {}) {
    o.timeout_ms = options_.timeout_ms;
    auto r = run_process(argv, o);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      std::string err = r->err.empty() ? r->out : r->err;
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      return Status::unavailable(argv[0] + " exited with " + std::to_string(r->exit_code) + ": " + err);
    }
    return std::move(r->out);
  }

  SlurmCliOptions options_;
};

}  // namespace

std::vector<std::string> sbatch_arguments(const SlurmJobSpec& job) {
  std::vector<std::string> argv = {"sbatch", "--parsable", "--job-name=" + job.name};
  if (!job.gres.empty()) argv.push_back("--gres=" + job.gres);
  if (!job.node.empty()) argv.push_back("--nodelist=" + job.node);
  if (!job.partition.empty()) argv.push_back("--partition=" + job.partition);
  if (!job.account.empty()) argv.push_back("--account=" + job.account);
  argv.insert(argv.end(), job.extra_args.begin(), job.extra_args.end());
  return argv;
}

Result<std::vector<SlurmJobState>> parse_squeue(std::string_view text, const std::string& name_prefix) {
  std::vector<SlurmJobState> out;
  std::stringstream in{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto f = split_fields(line, '|');
    if (f.size() < 5)
      return Status::invalid_argument("squeue line " + std::to_string(n) + " has " + std::to_string(f.size()) +
                                      " fields, not 5: '" + line + "'");
    // The name is last and may hold '|': the rest of the line.
    const std::string name(f[4].data(), static_cast<size_t>(line.data() + line.size() - f[4].data()));
    if (name.rfind(name_prefix, 0) != 0) continue;
    out.push_back({std::string(f[0]), name, std::string(f[1]), std::string(f[2]), std::string(f[3])});
  }
  return out;
}

std::unique_ptr<SlurmClient> make_slurm_cli(SlurmCliOptions options) {
  return std::make_unique<SlurmCli>(std::move(options));
}

}  // namespace mufl::scheduler
