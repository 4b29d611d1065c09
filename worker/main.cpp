// mufl-worker: trains the rounds of one mufld group on this Slurm node and sends each result
// back (docs/cluster.md, "The worker protocol"). mufld's batch job runs it with no flags: its
// configuration comes from the environment sbatch passes (MUFL_SERVER_URL, MUFL_WORKER_ID,
// MUFL_WORKER_TOKEN); flags override it for runs by hand. The loop runs on a worker thread;
// this thread waits for SIGTERM or SIGINT (scancel sends SIGTERM). A stop while the loop is
// idle exits at once; a stop while it trains abandons the round first (mufld's deadline takes
// it back).
#include <unistd.h>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include "cli/stop_signals.h"
#include "scheduler/energy/power_profile.h"
#include "worker/worker_loop.h"

namespace {

namespace po = boost::program_options;
using mufl::Result;
using mufl::Status;
using namespace mufl::worker;

struct CommandLine {
  WorkerOptions options;
  std::string token_file;
  std::string datasets;  // --datasets, read into options.datasets
  bool exit_now = false;  // --help or --version: print `output` and exit 0
  std::string output;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// The CPUs Slurm gave the job, else the machine's.
int default_torch_threads() {
  const int slurm = std::atoi(env_or("SLURM_CPUS_ON_NODE", "0").c_str());
  if (slurm > 0) return slurm;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Slurm's name for this node (what mufld calls it in its devices), else the host name.
std::string node_name() {
  const std::string slurm = env_or("SLURMD_NODENAME", "");
  if (!slurm.empty()) return slurm;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

Status usage_error(const std::string& why) {
  return Status::invalid_argument(why + " (mufl-worker --help shows the flags)");
}

po::options_description describe(CommandLine& c) {
  WorkerOptions& o = c.options;
  po::options_description d(
      "mufl-worker: trains the rounds mufld gives it on this node and sends each result back.\n"
      "mufld submits it as a Slurm batch job (docs/cluster.md); flags override the environment.\n\nFlags");
  d.add_options()
      ("help,h", "show this help")
      ("version", "show the version")
      ("server", po::value(&o.server), "mufld's URL, http[s]://HOST[:PORT][/PATH] (default $MUFL_SERVER_URL)")
      ("worker-id", po::value(&o.worker_id), "this worker's id, wrk_… (default $MUFL_WORKER_ID)")
      ("token-file", po::value(&c.token_file),
       "a file whose first line is the worker's token (default: the token in $MUFL_WORKER_TOKEN)")
      ("data-dir", po::value(&o.data_dir)->default_value("var"),
       "where the data sets are: DIR/datasets/NAME/ (shared storage, or node-local scratch that --datasets "
       "fills from mufld)")
      ("datasets", po::value(&c.datasets)->default_value("auto"),
       "where the data set's files come from: shared (read them under --data-dir, never fetch), http (check "
       "them against mufld's size and SHA-256 and fetch what differs into --data-dir), or auto (shared when "
       "every file is there, else http)")
      ("torch-threads", po::value(&o.torch_threads)->default_value(default_torch_threads()),
       "LibTorch threads, 1 to 1024 (default: $SLURM_CPUS_ON_NODE, else this machine's CPUs)")
      ("ca-file", po::value(&o.ca_file), "PEM CA certificates (or the server's certificate) to trust for https://")
      ("give-up", po::value(&o.give_up_seconds)->default_value(600),
       "seconds without any answer from mufld after which the worker exits, 1 to 86400")
      ("energy-meter", po::value(&o.energy_meter)->default_value("auto"),
       "how the round's energy is metered: auto (NVML for the GPU, RAPL for the CPU, else the power model) "
       "or model")
      ("power-profile", po::value(&o.power_profile),
       "the power model's device profile (default V100 on a GPU, cpu on the CPU); docs/energy.md lists them");
  return d;
}

std::string help_text(const po::options_description& d) {
  std::ostringstream text;
  text << d
       << "\nEnvironment (what mufld's batch job sets; a flag wins):\n"
          "  MUFL_SERVER_URL    mufld's URL (--server)\n"
          "  MUFL_WORKER_ID     the worker's id (--worker-id)\n"
          "  MUFL_WORKER_TOKEN  the worker's token (--token-file); never printed\n"
          "  SLURM_CPUS_ON_NODE the default of --torch-threads\n"
          "  SLURMD_NODENAME    the node name sent with each result (else the host name)\n"
          "\nThe GPU is cuda:0 (Slurm's CUDA_VISIBLE_DEVICES leaves the job's GPU only), else the CPU.\n"
          "\nExit codes: 0 mufld said the worker is done, or SIGTERM/SIGINT; 1 a local error (the device's\n"
          "meter, --ca-file, the token file); 2 usage; 3 mufld does not know this worker or its token;\n"
          "5 no answer from mufld for --give-up seconds; 8 https: the server's certificate was refused.\n";
  return text.str();
}

Status check(WorkerOptions& o) {
  if (o.server.empty()) return usage_error("no server: set MUFL_SERVER_URL or --server");
  auto url = mufl::cli::parse_server_url(o.server);
  if (!url.ok()) return usage_error(url.status().message());
  o.url = *url;
  if (!std::regex_match(o.worker_id, std::regex("[A-Za-z0-9_-]{1,128}")))
    return usage_error(o.worker_id.empty() ? "no worker id: set MUFL_WORKER_ID or --worker-id"
                                           : "the worker id may hold only letters, digits, '_' and '-'");
  if (o.torch_threads < 1 || o.torch_threads > 1024) return usage_error("--torch-threads must be from 1 to 1024");
  if (o.give_up_seconds < 1 || o.give_up_seconds > 86400) return usage_error("--give-up must be from 1 to 86400");
  if (o.energy_meter != "auto" && o.energy_meter != "model") return usage_error("--energy-meter must be auto or model");
  if (!o.power_profile.empty() && !mufl::scheduler::find_power_profile(o.power_profile).ok())
    return usage_error("--power-profile: no profile named '" + o.power_profile + "'");
  return Status::ok();
}

Result<CommandLine> parse_command_line(int argc, char** argv) {
  CommandLine c;
  c.options.server = env_or("MUFL_SERVER_URL", "");
  c.options.worker_id = env_or("MUFL_WORKER_ID", "");
  po::options_description desc = describe(c);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help") || vm.count("version")) {
    c.exit_now = true;
    c.output = vm.count("help") ? help_text(desc) : std::string("mufl-worker ") + MUFL_VERSION + "\n";
    return c;
  }
  if (Status s = check(c.options); !s.is_ok()) return s;
  auto source = parse_dataset_source(c.datasets);
  if (!source.ok()) return usage_error(source.status().message());
  c.options.datasets = *source;
  return c;
}

// The token: the first line of --token-file, else $MUFL_WORKER_TOKEN. kNotFound, or
// kInvalidArgument for an empty one; the messages never hold the token.
Result<std::string> read_token(const std::string& token_file) {
  if (token_file.empty()) {
    std::string token = env_or("MUFL_WORKER_TOKEN", "");
    if (token.empty()) return Status::invalid_argument("no token: set MUFL_WORKER_TOKEN or --token-file");
    return token;
  }
  std::ifstream in(token_file);
  if (!in) return Status::not_found("cannot read the token file " + token_file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return Status::invalid_argument("the token file " + token_file + " is empty");
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_command_line(argc, argv);
  if (!parsed.ok()) {
    std::cerr << "mufl-worker: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->exit_now) {
    std::cout << parsed->output;
    return kExitDone;
  }
  auto token = read_token(parsed->token_file);
  if (!token.ok()) {
    std::cerr << "mufl-worker: " << token.status().message() << "\n";
    return token.status().is_not_found() ? kExitLocal : kExitUsage;
  }
  mufl::cli::block_stop_signals();  // before any thread starts: every thread inherits the mask

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ mufl-worker: %v");
  WorkerOptions options = std::move(parsed->options);
  options.token = std::move(*token);
  options.host = node_name();
  if (!options.url.tls && options.url.host != "localhost" && options.url.host.rfind("127.", 0) != 0)
    spdlog::warn("plain http:// to {}: the worker token and the model cross the network in the clear", options.url.host);
  WorkerLoop loop(std::move(options), [](const std::string& line) { spdlog::info("{}", line); });
  return mufl::cli::run_until_done_or_signalled(
      {[&] { return loop.run(); }, [&] { loop.stop(); }, [&] { return loop.busy(); }}, kExitDone);
}
