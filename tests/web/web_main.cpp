// Catch2's main for the web dashboard tests: without a Chromium to drive, every test reports
// itself skipped (exit 77, CTest's SKIP_RETURN_CODE) with the reason, instead of failing.
// Listing the tests (CTest's discovery at build time) works without a browser.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <iostream>
#include <string>

#include "tests/support/chromium.h"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]).rfind("--list", 0) == 0;
  if (!listing && mufl::testing::Chromium::find_binary().empty()) {
    std::cout << "SKIP: no chromium on PATH (install the Debian package chromium, as scripts/setup does, "
                 "or set MUFL_CHROMIUM): the web dashboard tests did not run\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
