#pragma once
// Where a muflctl command reads and writes: the process's streams in main, string streams in
// tests.
#include <iostream>

namespace mufl::cli {

struct Console {
  std::istream& in;    // submit -
  std::ostream& out;   // results: tables, ids, JSON
  std::ostream& err;   // errors, and notes that are not results
  bool out_is_tty;     // watch redraws one progress bar in place only on a terminal
};

}  // namespace mufl::cli
