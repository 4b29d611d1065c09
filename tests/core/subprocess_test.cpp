// core/subprocess.h: programs run without a shell, their output and exit status come back,
// and a program that hangs, floods or is missing is an ordinary error, not a hang.
#include "core/subprocess.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

using namespace mufl;

TEST_CASE("run_process returns stdout, stderr and the exit status", "[subprocess]") {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  REQUIRE(r.ok());
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");
  CHECK(r->exit_code == 3);
}

TEST_CASE("run_process passes arguments as they are, with no shell in between", "[subprocess]") {
  auto r = run_process({"printf", "%s|", "a b", "$HOME", "'q'"});
  REQUIRE(r.ok());
  CHECK(r->out == "a b|$HOME|'q'|");
}

TEST_CASE("run_process feeds stdin and adds environment entries", "[subprocess]") {
  ProcessOptions o;
  o.stdin_data = std::string(200'000, 'x');  // larger than a pipe's buffer
  o.env = {"MUFL_SUBPROCESS_TEST=seen"};
  auto r = run_process({"sh", "-c", "wc -c; echo $MUFL_SUBPROCESS_TEST"}, o);
  REQUIRE(r.ok());
  CHECK(r->out == "200000\nseen\n");
}

TEST_CASE("run_process: a missing program is kNotFound", "[subprocess]") {
  auto r = run_process({"mufl-no-such-program-xyz"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kNotFound);
}

TEST_CASE("run_process kills a program that runs past its time", "[subprocess]") {
  ProcessOptions o;
  o.timeout_ms = 200;
  auto r = run_process({"sleep", "30"}, o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
}

TEST_CASE("run_process stops a program that writes too much", "[subprocess]") {
  ProcessOptions o;
  o.max_output_bytes = 10'000;
  auto r = run_process({"yes"}, o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kResourceExhausted);
}

TEST_CASE("run_process reports a program killed by a signal as 128 + the signal", "[subprocess]") {
  auto r = run_process({"sh", "-c", "kill -9 $$"});
  REQUIRE(r.ok());
  CHECK(r->exit_code == 128 + 9);
}

TEST_CASE("run_process: the child gets stdin, stdout and stderr, and none of our other descriptors", "[subprocess]") {
  const int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, as Asio's sockets
  REQUIRE(leaked > 2);
  auto r = run_process({"sh", "-c", "ls /proc/$$/fd"});
  ::close(leaked);
  REQUIRE(r.ok());
  CHECK(r->out.find("\n" + std::to_string(leaked) + "\n") == std::string::npos);
  CHECK(r->out.rfind("0\n1\n2\n", 0) == 0);
}
