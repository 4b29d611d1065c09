#include "edge/options.h"

#include <boost/program_options.hpp>

#include <regex>
#include <sstream>

#include "scheduler/energy/power_profile.h"
#include "service/version.h"

namespace mufl::edge {
namespace {

namespace po = boost::program_options;

Status usage_error(const std::string& why) {
  return Status::invalid_argument(why + " (mufl-client --help shows the flags)");
}

po::options_description describe(Options& o) {
  po::options_description d("mufl-client: trains a mufld federation's rounds on this machine's own data\n\nFlags");
  d.add_options()
      ("help,h", "show this help")
      ("version", "show the version")
      ("server", po::value(&o.server), "mufld's URL, http[s]://HOST[:PORT] (required)")
      ("enroll-token", po::value(&o.enroll_token),
       "the federation's enrollment token (or MUFL_ENROLL_TOKEN); needed until the client has its own token")
      ("data", po::value(&o.data_dir), "the directory of this client's samples (required; docs/clients.md)")
      ("name", po::value(&o.name), "this client's name in the federation (needed to enroll)")
      ("token-file", po::value(&o.token_file), "where the client token is kept, mode 0600 (default DATA/.mufl-client-token)")
      ("device", po::value(&o.device)->default_value("cpu"), "where to train: cpu or cuda:N")
      ("threads", po::value(&o.threads)->default_value(0), "LibTorch threads (0: LibTorch's default)")
      ("ca-file", po::value(&o.ca_file), "PEM CA certificates (or the server's certificate) to trust for https://")
      ("insecure", po::bool_switch(&o.insecure), "allow plain http:// to a host that is not this machine")
      ("poll-wait", po::value(&o.poll_wait_seconds)->default_value(30), "seconds one long poll for work waits, 1 to 60")
      ("max-backoff", po::value(&o.max_backoff_seconds)->default_value(30),
       "the longest pause in seconds between reconnection attempts, 1 to 3600")
      ("energy-meter", po::value(&o.energy_meter)->default_value("auto"),
       "how this client meters its energy per lease: auto (NVML, RAPL, else the power model) or model")
      ("power-profile", po::value(&o.power_profile),
       "the power model's device profile (default cpu, or V100 for cuda:N); docs/energy.md lists them")
      ("once", po::bool_switch(&o.once), "stop after the first lease or the first empty poll");
  return d;
}

Status check(Options& o, const po::variables_map& vm) {
  if (o.server.empty()) return usage_error("--server is required");
  if (o.data_dir.empty()) return usage_error("--data is required");
  auto url = cli::parse_server_url(o.server);
  if (!url.ok()) return usage_error(url.status().message());
  o.url = *url;
  if (!o.url.tls && !o.insecure && !is_loopback(o.url.host))
    return usage_error("refusing plain http:// to " + o.url.host +
                       ": the client token and the model would cross the network in the clear; use https:// "
                       "(with --ca-file for a private CA) or --insecure");
  if (!std::regex_match(o.device, std::regex("cpu|cuda:[0-9]{1,3}")))
    return usage_error("--device must be cpu or cuda:N");
  if (o.threads < 0 || o.threads > 1024) return usage_error("--threads must be from 0 to 1024");
  if (o.poll_wait_seconds < 1 || o.poll_wait_seconds > 60) return usage_error("--poll-wait must be from 1 to 60");
  if (o.max_backoff_seconds < 1 || o.max_backoff_seconds > 3600)
    return usage_error("--max-backoff must be from 1 to 3600");
  if (o.energy_meter != "auto" && o.energy_meter != "model") return usage_error("--energy-meter must be auto or model");
  if (o.power_profile.empty()) o.power_profile = o.device == "cpu" ? "cpu" : "V100";
  if (!scheduler::find_power_profile(o.power_profile).ok())
    return usage_error("--power-profile: no profile named '" + o.power_profile + "'");
  if (o.token_file.empty()) o.token_file = o.data_dir + "/.mufl-client-token";
  (void)vm;
  return Status::ok();
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

Result<Parsed> parse_command_line(int argc, const char* const* argv, const char* const* env) {
  Parsed out;
  Options& o = out.options;
  for (const char* const* e = env; e && *e; ++e) {
    const std::string kv = *e;
    if (kv.rfind("MUFL_ENROLL_TOKEN=", 0) == 0) o.enroll_token = kv.substr(18);
  }
  po::options_description desc = describe(o);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::ostringstream text;
    text << desc << "\nExit codes: 0 stopped (SIGTERM, SIGINT, --once), 2 usage, 3 refused by the server "
         << "(revoked, bad or expired enrollment token, name taken), 1 a local error (data, token file).\n";
    out.exit_now = true;
    out.output = text.str();
    return out;
  }
  if (vm.count("version")) {
    out.exit_now = true;
    out.output = std::string("mufl-client ") + service::kVersion + "\n";
    return out;
  }
  if (Status s = check(o, vm); !s.is_ok()) return s;
  return out;
}

}  // namespace mufl::edge
