#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cli/options.h"

using namespace mufl::cli;

namespace {

mufl::Result<ParsedCommandLine> parse(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), "muflctl");
  std::vector<const char*> argv, envp;
  for (const auto& a : args) argv.push_back(a.c_str());
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return parse_command_line(static_cast<int>(argv.size()), argv.data(), envp.data());
}

}  // namespace

TEST_CASE("cli options: server and token come from flags, else the environment, else defaults") {
  auto d = parse({"list"});
  REQUIRE(d.ok());
  CHECK(d->options.url.host == "127.0.0.1");
  CHECK(d->options.url.port == 8080);
  CHECK(d->options.token.empty());
  CHECK(d->options.timeout_seconds == 30);

  auto e = parse({"list"}, {"MUFL_SERVER=http://example.org:9000/mufl/", "MUFL_TOKEN=t-env", "MUFL_TIMEOUT=2.5"});
  REQUIRE(e.ok());
  CHECK(e->options.url.host == "example.org");
  CHECK(e->options.url.port == 9000);
  CHECK(e->options.url.prefix == "/mufl");
  CHECK(e->options.token == "t-env");
  CHECK(e->options.timeout_seconds == 2.5);

  auto f = parse({"--server", "http://10.0.0.1:81", "list", "--token", "t-flag"}, {"MUFL_TOKEN=t-env"});
  REQUIRE(f.ok());
  CHECK(f->options.url.host == "10.0.0.1");
  CHECK(f->options.url.port == 81);
  CHECK(f->options.token == "t-flag");

  auto ca = parse({"--server", "https://h", "list"}, {"MUFL_CA_FILE=/env/ca.pem"});
  REQUIRE(ca.ok());
  CHECK(ca->options.ca_file == "/env/ca.pem");
  auto ca_flag = parse({"list", "--ca-file", "/flag/ca.pem"}, {"MUFL_CA_FILE=/env/ca.pem"});
  REQUIRE(ca_flag.ok());
  CHECK(ca_flag->options.ca_file == "/flag/ca.pem");
}

TEST_CASE("cli options: each command takes its own flags and arguments") {
  auto s = parse({"submit", "-", "--idempotency-key", "k", "--json"});
  REQUIRE(s.ok());
  CHECK(s->options.command == "submit");
  CHECK(s->options.args == std::vector<std::string>{"-"});
  CHECK(s->options.idempotency_key == "k");
  CHECK(s->options.json);

  auto l = parse({"list", "--state", "queued", "--limit", "5", "--all"});
  REQUIRE(l.ok());
  CHECK(l->options.state == "queued");
  CHECK(l->options.limit == 5);
  CHECK(l->options.all);

  auto d = parse({"download", "act_1", "-o", "m.pt", "--force"});
  REQUIRE(d.ok());
  CHECK(d->options.output == "m.pt");
  CHECK(d->options.force);
  CHECK(d->options.cluster == -1);
  auto dc = parse({"download", "act_1", "-o", "m.pt", "--cluster", "3"});
  REQUIRE(dc.ok());
  CHECK(dc->options.cluster == 3);

  auto g = parse({"groups", "grp_1"});
  REQUIRE(g.ok());
  CHECK(g->options.args == std::vector<std::string>{"grp_1"});

  auto w = parse({"watch", "act_1", "--interval", "0.5"});
  REQUIRE(w.ok());
  CHECK(w->options.interval_seconds == 0.5);
}

TEST_CASE("cli options: usage errors say what is wrong") {
  auto message = [](std::vector<std::string> args) {
    auto r = parse(std::move(args));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    return r.status().message();
  };
  CHECK_THAT(message({}), Catch::Contains("no command"));
  CHECK_THAT(message({"lst"}), Catch::Contains("unknown command 'lst'"));
  CHECK_THAT(message({"get"}), Catch::Contains("usage: muflctl get ID"));
  CHECK_THAT(message({"get", "a", "b"}), Catch::Contains("wrong number of arguments"));
  CHECK_THAT(message({"list", "--force"}), Catch::Contains("--force is not a flag of list"));
  CHECK_THAT(message({"list", "--bogus"}), Catch::Contains("bogus"));
  CHECK_THAT(message({"list", "--limit", "0"}), Catch::Contains("--limit"));
  CHECK_THAT(message({"list", "--limit", "many"}), Catch::Contains("limit"));
  CHECK_THAT(message({"download", "act_1"}), Catch::Contains("-o FILE"));
  CHECK_THAT(message({"download", "act_1", "-o", "m.pt", "--cluster", "16"}), Catch::Contains("--cluster"));
  CHECK_THAT(message({"get", "act_1", "--cluster", "1"}), Catch::Contains("--cluster is not a flag of get"));
  CHECK_THAT(message({"usage", "--from", "2026-1-1"}), Catch::Contains("YYYY-MM-DD"));
  CHECK_THAT(message({"list", "--timeout", "0"}), Catch::Contains("--timeout"));
  CHECK_THAT(message({"watch", "a", "--interval", "0"}), Catch::Contains("--interval"));
  CHECK_THAT(message({"groups", "grp_1", "--all"}), Catch::Contains("groups ID shows one group"));
  CHECK_THAT(message({"list", "--server", "ftp://mufl.example"}), Catch::Contains("must be an http:// or https:// URL"));
}

TEST_CASE("cli options: --help and --version exit at once") {
  auto h = parse({"--help"});
  REQUIRE(h.ok());
  CHECK(h->exit_now);
  CHECK_THAT(h->output, Catch::Contains("Exit codes:"));
  CHECK_THAT(h->output, Catch::Contains("7  watch: the activity was cancelled"));
  CHECK_THAT(h->output, Catch::Contains("8  TLS: the server's certificate was refused"));
  CHECK_THAT(h->output, Catch::Contains("stops at the first failure"));
  auto v = parse({"--version"});
  REQUIRE(v.ok());
  CHECK_THAT(v->output, Catch::StartsWith("muflctl "));
}

TEST_CASE("cli options: server URLs") {
  auto u = parse_server_url("http://[::1]:8081");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->port == 8081);
  auto plain = parse_server_url("http://localhost");
  REQUIRE(plain.ok());
  CHECK(plain->port == 80);
  CHECK_FALSE(plain->tls);
  CHECK(plain->prefix.empty());
  auto https = parse_server_url("https://mufl.example/api/");
  REQUIRE(https.ok());
  CHECK(https->tls);
  CHECK(https->host == "mufl.example");
  CHECK(https->port == 443);
  CHECK(https->prefix == "/api");
  CHECK(parse_server_url("https://10.0.0.1:8443")->port == 8443);
  for (const char* bad : {"localhost:8080", "http://", "http://:80", "http://h:0", "http://h:99999", "http://h:",
                          "http://u@h", "http://h/p?q=1", "ftp://h", "https://", "https://h:0", "HTTPS://h"}) {
    INFO(bad);
    CHECK_FALSE(parse_server_url(bad).ok());
  }
}
