#include "cli/options.h"

#include <boost/program_options.hpp>

#include <algorithm>
#include <sstream>

#include "service/version.h"

namespace mufl::cli {
namespace po = boost::program_options;

namespace {

struct CommandSpec {
  const char* name;
  size_t min_args, max_args;
  std::vector<std::string> flags;  // the command's own flags (the global ones go everywhere)
  const char* usage;
  const char* what;
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"submit", 1, 1, {"idempotency-key"}, "submit FILE.json|-",
       "submit the activity object, or the array of activity objects, in FILE (- reads stdin);\n"
       "prints each created id. An array is submitted in order and stops at the first failure,\n"
       "which is reported with its index; the activities before it stay created (exit != 0).\n"
       "--idempotency-key K sends K (item i of an array: K-i), so a rerun creates nothing twice"},
      {"list", 0, 0, {"state", "limit", "cursor", "all"}, "list [--state S] [--limit N] [--cursor C] [--all]",
       "list activities, newest first, one page (--all: every page)"},
      {"get", 1, 1, {}, "get ID", "show one activity"},
      {"watch", 1, 1, {"interval"}, "watch ID [--interval S]",
       "follow an activity round by round until it ends: the live event stream when the server\n"
       "has GET /v1/events, else polling every --interval seconds (default 2). Exit 0 when it\n"
       "succeeded, 6 failed, 7 cancelled"},
      {"cancel", 1, 1, {}, "cancel ID", "cancel an activity (cancelling twice is harmless)"},
      {"download", 1, 1, {"output", "force", "cluster"}, "download ID -o FILE [--force] [--cluster C]",
       "write a succeeded activity's model to FILE (a temp file renamed into place; an\n"
       "existing FILE is kept unless --force); checks the server's SHA-256. --cluster C: the\n"
       "model of client cluster C of an activity with client_clusters (get ID lists them)"},
      {"groups", 0, 1, {"phase", "limit", "cursor", "all"}, "groups [ID] [--phase P] [--limit N] [--all]",
       "list the groups activities train in, or show one with its affinity and split"},
      {"devices", 0, 0, {}, "devices", "list the devices with state, work unit, power and energy"},
      {"usage", 0, 0, {"from", "to", "tenant"}, "usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--tenant ID]",
       "device-seconds, joules and grams CO2e per UTC day (default: the last 30 days);\n"
       "--tenant with the admin token"},
  };
  return kCommands;
}

const CommandSpec* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

const char* kGlobalFlags[] = {"server", "token", "json", "timeout", "ca-file", "help", "version", "command", "args"};

po::options_description describe(Options& o) {
  po::options_description desc("Flags");
  desc.add_options()
      ("help,h", "print this help and exit")
      ("version", "print the version and exit")
      ("server", po::value<std::string>(&o.server), "mufld's URL, http:// or https:// (env MUFL_SERVER; default http://127.0.0.1:8080)")
      ("ca-file", po::value<std::string>(&o.ca_file),
       "https: trust the CA certificates in this PEM file (or the server's self-signed certificate)\n"
       "instead of the system's trust store (env MUFL_CA_FILE)")
      ("token", po::value<std::string>(&o.token), "bearer token (env MUFL_TOKEN, which keeps it out of ps)")
      ("json", po::bool_switch(&o.json), "print JSON instead of tables")
      ("timeout", po::value<double>(&o.timeout_seconds), "seconds one request may take (env MUFL_TIMEOUT; default 30)")
      ("idempotency-key", po::value<std::string>(&o.idempotency_key), "submit: Idempotency-Key (array item i: KEY-i)")
      ("state", po::value<std::string>(&o.state), "list: only activities in this state")
      ("phase", po::value<std::string>(&o.phase), "groups: only groups in this phase")
      ("limit", po::value<int>(&o.limit), "list, groups: page size, 1 to 1000")
      ("cursor", po::value<std::string>(&o.cursor), "list, groups: the page after this next_cursor")
      ("all", po::bool_switch(&o.all), "list, groups: follow next_cursor to the last page")
      ("interval", po::value<double>(&o.interval_seconds), "watch: seconds between polls (default 2)")
      ("output,o", po::value<std::string>(&o.output), "download: the file to write")
      ("force", po::bool_switch(&o.force), "download: replace an existing file")
      ("cluster", po::value<int>(&o.cluster), "download: that client cluster's model, 0 to 15")
      ("from", po::value<std::string>(&o.from), "usage: first UTC day, YYYY-MM-DD")
      ("to", po::value<std::string>(&o.to), "usage: last UTC day, YYYY-MM-DD")
      ("tenant", po::value<std::string>(&o.tenant), "usage: whose usage (admin token)");
  return desc;
}

bool is_day(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

Status usage_error(const std::string& what) { return Status::invalid_argument(what + " (see muflctl --help)"); }

}  // namespace

Result<ServerUrl> parse_server_url(const std::string& text) {
  ServerUrl url;
  url.tls = text.rfind("https://", 0) == 0;
  const std::string scheme = url.tls ? "https://" : "http://";
  if (text.rfind(scheme, 0) != 0)
    return Status::invalid_argument("--server " + text + ": must be an http:// or https:// URL, e.g. http://127.0.0.1:8080");
  if (url.tls) url.port = 443;
  std::string rest = text.substr(scheme.size());
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) url.prefix = rest.substr(slash);
  while (!url.prefix.empty() && url.prefix.back() == '/') url.prefix.pop_back();
  if (authority.find('@') != std::string::npos || url.prefix.find_first_of("?#") != std::string::npos)
    return Status::invalid_argument("--server " + text + ": only " + scheme + "HOST[:PORT][/PATH] is supported");
  std::string port;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Status::invalid_argument("--server " + text + ": unclosed [");
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status::invalid_argument("--server " + text + ": bad port");
      port = authority.substr(close + 2);
      if (port.empty()) return Status::invalid_argument("--server " + text + ": bad port");
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return Status::invalid_argument("--server " + text + ": bad port");
    }
  }
  if (url.host.empty()) return Status::invalid_argument("--server " + text + ": no host");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
        std::stoi(port) > 65535)
      return Status::invalid_argument("--server " + text + ": the port must be a number from 1 to 65535");
    url.port = static_cast<uint16_t>(std::stoi(port));
  }
  return url;
}

std::string help_text() {
  Options scratch;
  std::ostringstream h;
  h << "muflctl: the command-line client of mufld (http:// or https://).\n\n"
    << "Usage: muflctl [flags] COMMAND [ARGS]   (flags may come before or after the command)\n\nCommands:\n";
  for (const auto& c : commands()) {
    h << "  " << c.usage << "\n";
    std::istringstream lines(c.what);
    for (std::string line; std::getline(lines, line);) h << "      " << line << "\n";
  }
  h << "\n" << describe(scratch)
    << "\nEnvironment: MUFL_SERVER, MUFL_TOKEN, MUFL_TIMEOUT, MUFL_CA_FILE (a flag wins over its variable).\n"
    << "\nhttps://: the server's certificate must chain to a trusted CA (--ca-file, else the system's)\n"
    << "and name the server's host (DNS name or IP address); TLS 1.2 at least.\n"
    << "\n--json prints the API's JSON document unchanged, except: submit prints\n"
    << "{\"items\":[{\"index\":I,\"id\":ID,\"activity\":{...}}],\"failed\":null|{\"index\":I,\"status\":S,\"problem\":{...}}};\n"
    << "list/groups --all print {\"items\":[every page],\"next_cursor\":null}; download prints\n"
    << "{\"id\",\"path\",\"bytes\",\"sha256\"}; watch prints one JSON object a line (round, rounds, state,\n"
    << "metrics, ...; see README.md). Errors always go to stderr as text.\n"
    << "\nExit codes:\n"
    << "  0  done (watch: the activity succeeded)\n"
    << "  1  a local file cannot be read or written, or exists (download without --force);\n"
    << "     also an unexpected internal error\n"
    << "  2  usage error: bad flags or arguments, or a file that is not JSON activities\n"
    << "  3  the API answered 4xx (bad request, bad token, not found, wrong state, quota);\n"
    << "     its problem title and detail are on stderr\n"
    << "  4  the API answered 5xx (or sent a model whose SHA-256 is wrong)\n"
    << "  5  cannot connect to the server, the connection broke, or --timeout passed\n"
    << "  6  watch: the activity failed\n"
    << "  7  watch: the activity was cancelled\n"
    << "  8  TLS: the server's certificate was refused (not trusted: see --ca-file; expired; not\n"
    << "     for this host), or the TLS handshake failed (is the server https?)\n";
  return h.str();
}

Result<ParsedCommandLine> parse_command_line(int argc, const char* const* argv, const char* const* env) {
  ParsedCommandLine out;
  Options& o = out.options;
  // The environment first: a flag given on the command line then overwrites it.
  for (const char* const* e = env; e && *e; ++e) {
    const std::string kv(*e);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (name == "MUFL_SERVER") o.server = value;
    if (name == "MUFL_TOKEN") o.token = value;
    if (name == "MUFL_CA_FILE") o.ca_file = value;
    if (name == "MUFL_TIMEOUT") {
      try {
        size_t used = 0;
        o.timeout_seconds = std::stod(value, &used);
        if (used != value.size()) throw std::invalid_argument(value);
      } catch (const std::exception&) {
        return usage_error("MUFL_TIMEOUT=" + value + " is not a number of seconds");
      }
    }
  }

  po::options_description desc = describe(o);
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&o.command))(
      "args", po::value<std::vector<std::string>>(&o.args));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }

  if (vm.count("help") || o.command == "help") {
    out.exit_now = true;
    out.output = help_text();
    return out;
  }
  if (vm.count("version")) {
    out.exit_now = true;
    out.output = std::string("muflctl ") + service::kVersion + "\n";
    return out;
  }
  if (o.command.empty()) return usage_error("no command given");
  const CommandSpec* spec = find_command(o.command);
  if (!spec) return usage_error("unknown command '" + o.command + "'");
  for (const auto& [name, value] : vm) {
    if (value.defaulted() || std::find(std::begin(kGlobalFlags), std::end(kGlobalFlags), name) != std::end(kGlobalFlags))
      continue;
    // bool_switch stores false when absent; only a given switch counts.
    if (name == "all" && !o.all) continue;
    if (name == "force" && !o.force) continue;
    if (std::find(spec->flags.begin(), spec->flags.end(), name) == spec->flags.end())
      return usage_error("--" + name + " is not a flag of " + o.command);
  }
  if (o.args.size() < spec->min_args || o.args.size() > spec->max_args)
    return usage_error("wrong number of arguments; usage: muflctl " + std::string(spec->usage));
  for (const auto& a : o.args)
    if (a.empty()) return usage_error(o.command + ": an argument is empty");

  auto url = parse_server_url(o.server);
  if (!url.ok()) return usage_error(url.status().message());
  o.url = *url;
  if (!(o.timeout_seconds > 0 && o.timeout_seconds <= 3600)) return usage_error("--timeout must be above 0 and at most 3600 seconds");
  if (vm.count("limit") && (o.limit < 1 || o.limit > 1000)) return usage_error("--limit must be from 1 to 1000");
  if (o.all && !o.cursor.empty()) return usage_error("--all and --cursor do not go together");
  if (o.command == "groups" && !o.args.empty() && (!o.phase.empty() || o.limit || o.all || !o.cursor.empty()))
    return usage_error("groups ID shows one group; --phase, --limit, --cursor and --all list them");
  if (!(o.interval_seconds >= 0.05 && o.interval_seconds <= 3600))
    return usage_error("--interval must be from 0.05 to 3600 seconds");
  if (o.command == "download" && o.output.empty()) return usage_error("download needs -o FILE");
  if (vm.count("cluster") && (o.cluster < 0 || o.cluster > 15)) return usage_error("--cluster must be from 0 to 15");
  if (!o.from.empty() && !is_day(o.from)) return usage_error("--from must be a UTC date YYYY-MM-DD");
  if (!o.to.empty() && !is_day(o.to)) return usage_error("--to must be a UTC date YYYY-MM-DD");
  return out;
}

}  // namespace mufl::cli
