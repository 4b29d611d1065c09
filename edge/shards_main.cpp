// mufl-shards: cuts a catalog data set into client shards, each a directory mufl-client can
// serve as its --data (docs/clients.md). The shards are exactly the partitions the in-process
// simulation of an activity with the same data set, clients, partition and seed trains on, so
// a federation of these clients, each chosen every round, trains the same weights.
// scripts/make-shards builds and runs it.
#include <boost/program_options.hpp>

#include <iostream>
#include <string>

#include "fl/fl_job.h"
#include "fl/shards.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  mufl::fl::JobConfig config;
  mufl::fl::RuntimeOptions runtime;
  std::string out;
  int64_t seed = 0;
  po::options_description d("mufl-shards: cuts a catalog data set into client shards (docs/clients.md)\n\nFlags");
  d.add_options()("help,h", "this text")
      ("dataset", po::value(&config.dataset)->default_value("mnist"), "catalog data set: mnist, fashion or synthetic")
      ("clients", po::value(&config.clients)->default_value(4), "number of shards")
      ("partition", po::value(&config.partition)->default_value("iid"), "iid or dirichlet")
      ("alpha", po::value(&config.dirichlet_alpha)->default_value(0.5), "Dirichlet concentration (label skew)")
      ("seed", po::value(&seed)->default_value(0), "the activity's seed: the same seed gives the same shards")
      ("data-dir", po::value(&runtime.data_dir)->default_value("var"), "where the data sets are (DIR/datasets/)")
      ("out", po::value(&out), "output directory: OUT/client-<i>/ (required)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, d), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "mufl-shards: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << d << "\n";
    return 0;
  }
  if (out.empty() || config.clients < 1 || seed < 0) {
    std::cerr << "mufl-shards: --out is required, --clients at least 1, --seed at least 0\n";
    return 2;
  }
  config.seed = static_cast<uint64_t>(seed);
  if (auto s = mufl::fl::write_client_shards(config, runtime, out); !s.is_ok()) {
    std::cerr << "mufl-shards: " << s.message() << "\n";
    return 1;
  }
  std::cout << "mufl-shards: " << config.clients << " shards of " << config.dataset << " (" << config.partition
            << ", seed " << seed << ") in " << out << "/client-0 .. client-" << config.clients - 1 << "\n";
  return 0;
}
