// bench/algorithms: the seed papers' FL methods against FedAvg on the same work (issue 17).
//
// For each data set (mnist, fashion-mnist) and Dirichlet alpha (0.1, 0.5), one `class` activity
// (32 clients, 5 per round, the service's defaults otherwise: JobConfig::from_spec) is trained
// by each method, in one process, with the same seed, so the same clients are drawn each round:
//   fedavg        FedAvg, weighted by samples (the baseline)
//   cosine        FedReID's cosine-distance weights ("weighting": "cosine")
//   personalized  FedUReID's personalised epochs ("local_epochs": "personalized", E = 5)
//   fedavg-e5     FedAvg with 5 fixed epochs: what personalised epochs save computation against
//   fedema        FedEMA's divergence-aware EMA start of each client ("local_update": "fedema",
//                 λ auto); its clients' kept models go to a fresh folder under $TMPDIR (or /tmp),
//                 released each round as the executor does, and their bytes on the disk are reported
//   clusters      FedReID's client clustering ("client_clusters": --clusters, default 4, clustered in
//                 round --cluster-round, default 2); its accuracy is each client's cluster model on
//                 test data with the client's label mix, averaged over clients (docs/tasks.md), and
//                 the final clusters' sizes are printed
// For each it prints the final test accuracy, the rounds to reach the target (by default 95 %
// of FedAvg's final accuracy on the same partition), the samples trained (computation, every
// epoch counted) and the device-seconds, each against its baseline, and ends with ONE line of
// JSON. A method that does not beat FedAvg is reported as such.
// --task ssl trains the self-supervised task instead (SimSiam; its accuracy is the linear
// probe's, docs/tasks.md), the setting of FedEMA's comparison on fashion-mnist Dirichlet(0.1).
// It also prints the probe of the untrained encoder, which every method starts from.
// Exit 0 unless something failed; 2 on bad flags or a missing data set.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "core/activity.h"
#include "fl/fl_job.h"

namespace {

namespace fl = mufl::fl;
using mufl::Status;

struct Options {
  std::string data_dir = "var";
  std::vector<std::string> datasets = {"mnist", "fashion-mnist"};
  std::vector<double> alphas = {0.1, 0.5};
  std::vector<std::string> methods = {"fedavg", "cosine", "personalized", "fedavg-e5", "fedema", "clusters"};
  int64_t clusters = 4;       // the clusters method's k
  int64_t cluster_round = 2;  // and the round it clusters in
  std::string task = "class";  // or "ssl"
  int threads = 1;
  int64_t rounds = 20;
  int64_t clients = 32;
  int64_t per_round = 5;
  double target_fraction = 0.95;
  int64_t seed = 0;
  double lr = 0.05;  // every method's client learning rate (the service default)
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

[[noreturn]] void usage() {
  std::cout << "usage: algorithms [--datasets mnist,fashion-mnist,synthetic] [--alphas 0.1,0.5] [--rounds R]\n"
               "                  [--methods fedavg,cosine,personalized,fedavg-e5,fedema,clusters]\n"
               "                  [--clients C] [--per-round K] [--clusters K] [--cluster-round R]\n"
               "                  [--threads N] [--target-fraction F] [--seed S] [--lr LR] [--data-dir DIR]\n"
               "                  [--task class|ssl]\n"
               "                  [--quick]\n"
               "defaults: mnist,fashion-mnist; 0.1,0.5; 20 rounds; all methods; 32 clients, 5 per round; 1 thread;\n"
               "          target = 0.95 x FedAvg's final accuracy on the same partition; seed 0; lr 0.05;\n"
               "          var; class;\n"
               "          clusters: 4 clusters formed in round 2\n"
               "--task ssl: the self-supervised task; its accuracy is the linear probe's (docs/tasks.md)\n"
               "--quick:  synthetic, alpha 0.1, 4 rounds, 8 clients, 4 per round (explicit flags win)\n";
  std::exit(0);
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string> given;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage();
    if (flag == "--quick") {
      given.emplace("--datasets", "synthetic");
      given.emplace("--alphas", "0.1");
      given.emplace("--rounds", "4");
      given.emplace("--clients", "8");
      given.emplace("--per-round", "4");
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
    given[flag] = argv[++i];
  }
  for (const auto& [flag, v] : given) {
    if (flag == "--data-dir") o.data_dir = v;
    else if (flag == "--datasets") o.datasets = split_list(v);
    else if (flag == "--alphas") {
      o.alphas.clear();
      for (const auto& a : split_list(v)) o.alphas.push_back(std::stod(a));
    } else if (flag == "--methods") o.methods = split_list(v);
    else if (flag == "--threads") o.threads = std::stoi(v);
    else if (flag == "--rounds") o.rounds = std::stoll(v);
    else if (flag == "--clients") o.clients = std::stoll(v);
    else if (flag == "--per-round") o.per_round = std::stoll(v);
    else if (flag == "--target-fraction") o.target_fraction = std::stod(v);
    else if (flag == "--seed") o.seed = std::stoll(v);
    else if (flag == "--lr") o.lr = std::stod(v);
    else if (flag == "--task") o.task = v;
    else if (flag == "--clusters") o.clusters = std::stoll(v);
    else if (flag == "--cluster-round") o.cluster_round = std::stoll(v);
    else throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  if (o.threads < 1 || o.rounds < 1 || o.clients < 1 || o.per_round < 1 || o.per_round > o.clients ||
      o.datasets.empty() || o.alphas.empty() || o.methods.empty() || !(o.target_fraction > 0) || !(o.lr > 0))
    throw std::invalid_argument("--threads, --rounds, --clients, --per-round (<= clients), --target-fraction, --lr must be "
                                "positive and the lists non-empty");
  for (const auto& m : o.methods)
    if (m != "fedavg" && m != "cosine" && m != "personalized" && m != "fedavg-e5" && m != "fedema" && m != "clusters")
      throw std::invalid_argument("unknown method " + m);
  // ssl has no client clustering (docs/tasks.md): left out unless asked for, and then refused.
  if (o.task == "ssl" && !given.count("--methods")) std::erase(o.methods, std::string("clusters"));
  const bool clusters = std::find(o.methods.begin(), o.methods.end(), "clusters") != o.methods.end();
  if (clusters && (o.clusters < 2 || o.clusters > 16 || o.clusters > o.clients || o.cluster_round < 1 ||
                   o.cluster_round > o.rounds))
    throw std::invalid_argument("--clusters is 2 to 16 (at most --clients), --cluster-round 1 to --rounds");
  if (o.task != "class" && o.task != "ssl") throw std::invalid_argument("--task is class or ssl, not " + o.task);
  return o;
}

// The activity a tenant would submit for `method`, as the service builds its job.
fl::JobConfig config_for(const Options& o, const std::string& dataset, double alpha, const std::string& method) {
  mufl::ActivitySpec spec;
  spec.name = "algorithms";
  spec.dataset = dataset;
  spec.task = o.task;
  spec.rounds = o.rounds;
  spec.clients = o.clients;
  spec.clients_per_round = o.per_round;
  spec.partition.kind = "dirichlet";
  spec.partition.alpha = alpha;
  spec.seed = o.seed;
  spec.learning_rate = o.lr;
  if (method == "cosine") spec.weighting = "cosine";
  if (method == "personalized") {
    spec.personalized_epochs = true;
    spec.local_epochs = 5;
  }
  if (method == "fedavg-e5") spec.local_epochs = 5;
  if (method == "fedema") spec.local_update = "fedema";
  if (method == "clusters") {
    spec.client_clusters = o.clusters;
    spec.cluster_round = o.cluster_round;
  }
  return fl::JobConfig::from_spec(spec);
}

// A fresh folder for one run's client states (removed by the caller).
std::string state_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/mufl-algorithms-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot make a folder for the client states");
  return pattern;
}

// The files under `dir` and their bytes.
std::pair<int64_t, int64_t> disk_use(const std::string& dir) {
  int64_t files = 0, bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) {
      ++files;
      bytes += static_cast<int64_t>(e.file_size());
    }
  return {files, bytes};
}

struct Run {
  std::string method;
  std::vector<double> accuracy;  // per round
  double loss = 0;
  int64_t samples = 0;  // every epoch counted
  double seconds = 0;   // the rounds' own seconds (training, aggregation, evaluation)
  int64_t state_files = 0, state_bytes = 0;  // fedema: the clients' kept models at the end
  std::vector<int64_t> cluster_sizes;        // clusters: clients per cluster at the end
  // Every client with the model it trains from, on test data with its label mix, at the end
  // (FlJob::evaluate_on_client_data): how the clusters method is scored, for all (class only).
  double client_accuracy = 0;
};

Run run_one(const Options& o, const std::string& dataset, double alpha, const std::string& method) {
  fl::JobConfig config = config_for(o, dataset, alpha, method);
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } states;
  if (config.local_update == "fedema") {
    states.dir = state_dir();
    config.client_state_dir = states.dir + "/clients";
  }
  auto job = fl::FlJob::create(config, fl::RuntimeOptions{o.data_dir, "cpu", {}});
  if (!job.ok())
    throw std::runtime_error("cannot create the job: " + job.status().to_string() +
                             (job.status().is_not_found() ? " (run scripts/setup to fetch the data sets)" : ""));
  Run r;
  r.method = method;
  while (!(*job)->finished()) {
    auto report = (*job)->run_round();
    if (!report.ok()) throw std::runtime_error(method + ": round failed: " + report.status().to_string());
    r.accuracy.push_back(report->eval.at(0).value);
    r.loss = report->eval.at(0).loss;
    r.samples += report->samples;
    r.seconds += report->seconds;
    r.cluster_sizes.clear();
    for (const auto& c : report->clusters) r.cluster_sizes.push_back(static_cast<int64_t>(c.clients.size()));
    // As the executor does once a round's checkpoint is recorded: it trusts this one and the one before.
    if (Status released = (*job)->release_client_states(report->round - 1); !released.is_ok())
      throw std::runtime_error(method + ": " + released.to_string());
  }
  if (!states.dir.empty()) std::tie(r.state_files, r.state_bytes) = disk_use(config.client_state_dir);
  if (o.task == "class") {
    auto per_client = (*job)->evaluate_on_client_data();
    if (!per_client.ok()) throw std::runtime_error(method + ": " + per_client.status().to_string());
    r.client_accuracy = per_client->at(0).value;
  }
  return r;
}

// The full probe's accuracy of the model every method starts from (one seed: one initial
// model), before any round: what an ssl method's training adds is its gain over this.
double untrained_accuracy(const Options& o, const std::string& dataset, double alpha) {
  auto job = fl::FlJob::create(config_for(o, dataset, alpha, "fedavg"), fl::RuntimeOptions{o.data_dir, "cpu", {}});
  if (!job.ok()) throw std::runtime_error("cannot create the job: " + job.status().to_string());
  auto eval = (*job)->evaluate();
  if (!eval.ok()) throw std::runtime_error("cannot evaluate the untrained model: " + eval.status().to_string());
  return eval->at(0).value;
}

// The first round (1-based) whose accuracy reaches `target`; 0 when none does.
int64_t rounds_to(const std::vector<double>& accuracy, double target) {
  for (size_t i = 0; i < accuracy.size(); ++i)
    if (accuracy[i] >= target) return static_cast<int64_t>(i) + 1;
  return 0;
}

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

nlohmann::json run_partition(const Options& o, const std::string& dataset, double alpha) {
  std::vector<Run> runs;
  for (const auto& m : o.methods) {
    std::printf("  %s/%g: %s ...\n", dataset.c_str(), alpha, m.c_str());
    std::fflush(stdout);
    runs.push_back(run_one(o, dataset, alpha, m));
  }
  auto find = [&](const std::string& m) -> const Run* {
    for (const auto& r : runs)
      if (r.method == m) return &r;
    return nullptr;
  };
  const Run* base = find("fedavg");
  const double target = o.target_fraction * (base ? base->accuracy.back() : runs.front().accuracy.back());
  nlohmann::json out = {{"dataset", dataset}, {"alpha", alpha}, {"target_accuracy", round_to(target, 1e4)}};
  std::printf("\n%s, Dirichlet(%g), %lld rounds; target accuracy %.4f (%.2f x FedAvg's final)\n", dataset.c_str(), alpha,
              static_cast<long long>(o.rounds), target, o.target_fraction);
  if (o.task == "ssl") {
    const double untrained = untrained_accuracy(o, dataset, alpha);
    std::printf("the untrained encoder's probe: %.4f (each method's training adds its accuracy minus this)\n",
                untrained);
    out["untrained_accuracy"] = round_to(untrained, 1e4);
  }
  std::printf("| method | final accuracy | vs fedavg (pts) | rounds to target | samples | vs its baseline | device-s | vs its baseline |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : runs) {
    // Personalised epochs save computation against the fixed epochs they replace.
    const Run* against = r.method == "personalized" && find("fedavg-e5") ? find("fedavg-e5") : base;
    const double acc = r.accuracy.back();
    const double gain = base ? 100.0 * (acc - base->accuracy.back()) : 0.0;
    const double samples_ratio = against ? static_cast<double>(r.samples) / static_cast<double>(against->samples) : 1.0;
    const double seconds_ratio = against && against->seconds > 0 ? r.seconds / against->seconds : 1.0;
    const int64_t reached = rounds_to(r.accuracy, target);
    std::printf("| %s | %.4f | %+.2f | %s | %lld | %.3f (%s) | %.1f | %.3f |\n", r.method.c_str(), acc, gain,
                reached ? std::to_string(reached).c_str() : "not reached", static_cast<long long>(r.samples),
                samples_ratio, against ? against->method.c_str() : "-", r.seconds, seconds_ratio);
    out[r.method] = {{"accuracy", round_to(acc, 1e4)},
                     {"loss", round_to(r.loss, 1e4)},
                     {"gain_points_vs_fedavg", round_to(gain, 100)},
                     {"rounds_to_target", reached},
                     {"samples", r.samples},
                     {"samples_ratio", round_to(samples_ratio, 1e3)},
                     {"device_seconds", round_to(r.seconds, 10)},
                     {"device_seconds_ratio", round_to(seconds_ratio, 1e3)},
                     {"baseline", against ? against->method : ""},
                     {"beats_fedavg", base && acc > base->accuracy.back()}};
    if (o.task == "class") {
      const double client_gain = base ? 100.0 * (r.client_accuracy - base->client_accuracy) : 0.0;
      std::printf("  %s: per-client accuracy %.4f (%+.2f pts vs fedavg's %.4f)\n", r.method.c_str(), r.client_accuracy,
                  client_gain, base ? base->client_accuracy : 0.0);
      out[r.method]["client_accuracy"] = round_to(r.client_accuracy, 1e4);
      out[r.method]["client_gain_points_vs_fedavg"] = round_to(client_gain, 100);
      out[r.method]["beats_fedavg_per_client"] = base && r.client_accuracy > base->client_accuracy;
    }
    if (r.state_files > 0) {
      std::printf("  %s: %lld client state files, %lld bytes (%lld per file)\n", r.method.c_str(),
                  static_cast<long long>(r.state_files), static_cast<long long>(r.state_bytes),
                  static_cast<long long>(r.state_bytes / r.state_files));
      out[r.method]["state_files"] = r.state_files;
      out[r.method]["state_bytes"] = r.state_bytes;
    }
    if (!r.cluster_sizes.empty()) {
      std::string sizes;
      for (auto n : r.cluster_sizes) sizes += (sizes.empty() ? "" : ", ") + std::to_string(n);
      std::printf("  %s: %zu clusters of %s clients\n", r.method.c_str(), r.cluster_sizes.size(), sizes.c_str());
      out[r.method]["cluster_sizes"] = r.cluster_sizes;
    }
  }
  std::fflush(stdout);
  return out;
}

int run(const Options& o) {
  (void)fl::set_torch_threads(o.threads);
  std::printf("algorithms: task %s, %d LibTorch thread(s), %lld clients, %lld per round, seed %lld, lr %g\n", o.task.c_str(),
              o.threads, static_cast<long long>(o.clients), static_cast<long long>(o.per_round),
              static_cast<long long>(o.seed), o.lr);
  nlohmann::json j = {{"bench", "algorithms"}, {"task", o.task}, {"rounds", o.rounds}, {"clients", o.clients},
                      {"clients_per_round", o.per_round}, {"threads", o.threads}, {"seed", o.seed}, {"lr", o.lr}, {"runs", nlohmann::json::array()}};
  for (const auto& d : o.datasets)
    for (double a : o.alphas) j["runs"].push_back(run_partition(o, d, a));
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::cerr << "algorithms: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "algorithms: " << e.what() << "\n";
    return 1;
  }
}
