// bench/fl_overhead: the cost of mufl's FL runtime over a bare LibTorch training loop.
//
// Issue: "the same model, data and number of steps trained through mufl's runtime and through a
// bare LibTorch loop in the same process. Target: overhead <= 5% in samples per second."
//
// A (mufl): an FlJob with clients = 1 and clients_per_round = 1, so that its single client holds
//   every training sample; task `class`, fedavg, batch 32, lr 0.05 with lr_decay 1 (the same
//   rate every round), local_epochs = --epochs. One repetition is one run_round(). run_round
//   also evaluates the new global model on the test set after aggregating; that evaluation is
//   timed separately (FlJob::evaluate() on the same weights, right after the round) and
//   SUBTRACTED, so "train" below is run_round minus one test-set evaluation. What stays in
//   is all the runtime does around training: client sampling, copying the global weights into
//   the worker, building the optimiser, train_local, copying the update out, FedAvg, setting
//   the global weights.
// B (bare): a MultiTaskNet built directly with the same tasks and starting from the job's
//   initial weights (exported with FlJob::export_model and loaded with torch::load), the same
//   TaskData (fl::make_task_data), SGD(lr 0.05, momentum 0.9, weight decay 5e-4) built per
//   repetition, and for each epoch std::shuffle with a std::mt19937_64 of the index list, then
//   for each batch of 32: index_select of images and targets, forward, cross-entropy,
//   zero_grad, backward, step. No loss read-back (.item()) — the strictest baseline.
//   The bare loop's test-set evaluation (fl::evaluate) is timed separately too, so the output
//   also gives the "whole round" comparison (mufl run_round vs bare train + evaluate).
//
// Repetitions alternate A B A B … (--reps each, at least 3) after one short warm-up of each,
// to cancel drift (thermal, the other tenant of the machine); the figures are medians.
// overhead % = (1 - mufl samples/s ÷ bare samples/s) · 100; ratio = overhead ÷ 5 %.
// Prints a table and ends with ONE line of JSON. Exit 0 unless something failed (a missed
// target is not a failure); 2 on bad flags or a missing data set.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fl/datasets.h"
#include "fl/fl_job.h"
#include "fl/model.h"
#include "fl/tasks.h"
#include "fl/training.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fl = mufl::fl;

constexpr double kTargetOverheadPct = 5.0;

struct Options {
  std::string dataset = "synthetic";
  std::string data_dir = "var";
  std::string task = "class";
  int threads = 1;
  int epochs = 0;  // 0: 3 for synthetic (12,000 samples), 1 otherwise (60,000 for MNIST)
  int reps = 5;
  int batch = 32;
  uint64_t seed = 0;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << "usage: fl_overhead [--dataset synthetic|mnist|fashion-mnist] [--data-dir DIR] [--task NAME]\n"
                   "                   [--threads N] [--epochs E] [--reps N] [--batch B] [--seed S]\n"
                   "defaults: synthetic, var, class, 1 thread, 3 epochs (synthetic) or 1 (others), 5 reps, 32\n";
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
    const std::string v = argv[++i];
    if (flag == "--dataset") o.dataset = v;
    else if (flag == "--data-dir") o.data_dir = v;
    else if (flag == "--task") o.task = v;
    else if (flag == "--threads") o.threads = std::stoi(v);
    else if (flag == "--epochs") o.epochs = std::stoi(v);
    else if (flag == "--reps") o.reps = std::stoi(v);
    else if (flag == "--batch") o.batch = std::stoi(v);
    else if (flag == "--seed") o.seed = std::stoull(v);
    else throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  if (o.epochs <= 0) o.epochs = o.dataset == "synthetic" ? 3 : 1;
  if (o.reps < 3) throw std::invalid_argument("--reps must be at least 3");
  if (o.threads < 1 || o.batch < 1) throw std::invalid_argument("--threads and --batch must be positive");
  return o;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The bare loop: `epochs` passes over all of `data` in batches of `batch`, shuffled by `seed`.
// Stops after `max_steps` steps when that is >= 0 (warm-up). Returns the samples trained.
int64_t bare_train(fl::MultiTaskNet& model, const fl::TaskData& data, int epochs, int batch, uint64_t seed,
                   int64_t max_steps = -1) {
  model->train();
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  int64_t samples = 0, steps = 0;
  for (int e = 0; e < epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    const auto index = torch::from_blob(order.data(), {static_cast<int64_t>(order.size())}, torch::kInt64);
    for (int64_t start = 0; start < index.size(0); start += batch) {
      if (max_steps >= 0 && steps >= max_steps) return samples;
      const auto b = index.slice(0, start, std::min<int64_t>(start + batch, index.size(0)));
      const auto logits = model->forward(data.images.index_select(0, b))[0];
      const auto loss = torch::nn::functional::cross_entropy(logits, data.targets[0].index_select(0, b));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      samples += b.size(0);
      ++steps;
    }
  }
  return samples;
}

int run(const Options& o) {
  (void)fl::set_torch_threads(o.threads);

  fl::JobConfig config;
  config.dataset = o.dataset;
  config.tasks = {o.task};
  config.rounds = o.reps;
  config.clients = 1;
  config.clients_per_round = 1;
  config.local_epochs = o.epochs;
  config.batch_size = o.batch;
  config.learning_rate = 0.05;
  config.lr_decay = 1.0;
  config.aggregator = "fedavg";
  config.partition = "iid";
  config.seed = o.seed;
  auto job_r = fl::FlJob::create(config, fl::RuntimeOptions{o.data_dir, "cpu", {}});
  if (!job_r.ok()) {
    std::cerr << "fl_overhead: cannot create the job: " << job_r.status().to_string() << "\n";
    return job_r.status().is_not_found() ? 2 : 1;
  }
  fl::FlJob& job = **job_r;

  // The bare side: the same data (load_dataset is deterministic; synthetic is regenerated from
  // its fixed seeds) and the job's initial weights.
  auto splits = fl::load_dataset(o.data_dir, o.dataset);
  if (!splits.ok()) {
    std::cerr << "fl_overhead: " << splits.status().to_string() << "\n";
    return 2;
  }
  auto task = fl::find_task(o.task);
  if (!task.ok()) {
    std::cerr << "fl_overhead: " << task.status().to_string() << "\n";
    return 2;
  }
  if (task->kind != fl::TaskKind::kLabel) {
    std::cerr << "fl_overhead: the bare loop uses cross-entropy: pick a label task (class, parity, magnitude)\n";
    return 2;
  }
  const std::vector<fl::TaskDef> tasks{*task};
  const fl::TaskData train = fl::make_task_data(splits->train, tasks);
  const fl::TaskData test = fl::make_task_data(splits->test, tasks);
  fl::MultiTaskNet bare(tasks);
  {
    auto bytes = job.export_model();
    if (!bytes.ok()) {
      std::cerr << "fl_overhead: " << bytes.status().to_string() << "\n";
      return 1;
    }
    std::istringstream in(*bytes);
    torch::load(bare, in);
  }

  std::printf("fl_overhead: dataset %s (%lld training samples, %lld test), task %s, %d epoch(s)/rep, batch %d, "
              "%d torch thread(s), %d reps each, alternating mufl/bare\n",
              o.dataset.c_str(), static_cast<long long>(train.size()), static_cast<long long>(test.size()),
              o.task.c_str(), o.epochs, o.batch, o.threads, o.reps);

  // Warm-up (not measured): 20 steps each. The FlJob round is abandoned by should_stop, which
  // leaves the job as it was.
  {
    int calls = 0;
    auto r = job.run_round([&] { return ++calls > 20; });
    if (!r.ok()) {
      std::cerr << "fl_overhead: warm-up round failed: " << r.status().to_string() << "\n";
      return 1;
    }
    (void)job.evaluate();
    bare_train(bare, train, 1, o.batch, 12345, 20);
    (void)fl::evaluate(bare, test);
  }

  std::vector<double> mufl_sps, bare_sps, mufl_round_sps, bare_round_sps, pair_overhead;
  std::vector<double> mufl_eval_s, bare_eval_s;
  int64_t samples_per_rep = 0;
  std::printf("%4s  %10s %8s %8s %12s  %10s %8s %12s  %9s\n", "rep", "mufl_round", "eval", "train", "mufl_samp/s",
              "bare_train", "eval", "bare_samp/s", "overhead");
  for (int rep = 0; rep < o.reps; ++rep) {
    // A: mufl
    auto t0 = Clock::now();
    auto report = job.run_round();
    const double round_s = seconds_since(t0);
    if (!report.ok()) {
      std::cerr << "fl_overhead: round " << rep + 1 << " failed: " << report.status().to_string() << "\n";
      return 1;
    }
    t0 = Clock::now();
    (void)job.evaluate();
    const double m_eval = seconds_since(t0);
    const double m_train = std::max(1e-9, round_s - m_eval);
    const auto m_samples = report->samples;

    // B: bare
    t0 = Clock::now();
    const int64_t b_samples = bare_train(bare, train, o.epochs, o.batch, 1000 + static_cast<uint64_t>(rep));
    const double b_train = seconds_since(t0);
    t0 = Clock::now();
    (void)fl::evaluate(bare, test);
    const double b_eval = seconds_since(t0);

    if (m_samples != b_samples) {
      std::cerr << "fl_overhead: sample counts differ (mufl " << m_samples << ", bare " << b_samples << ")\n";
      return 1;
    }
    samples_per_rep = m_samples;
    const double ms = m_samples / m_train, bs = b_samples / b_train;
    mufl_sps.push_back(ms);
    bare_sps.push_back(bs);
    mufl_round_sps.push_back(m_samples / round_s);
    bare_round_sps.push_back(b_samples / (b_train + b_eval));
    mufl_eval_s.push_back(m_eval);
    bare_eval_s.push_back(b_eval);
    pair_overhead.push_back((1 - ms / bs) * 100);
    std::printf("%4d  %9.3fs %7.3fs %7.3fs %12.1f  %9.3fs %7.3fs %12.1f  %8.2f%%\n", rep + 1, round_s, m_eval, m_train,
                ms, b_train, b_eval, bs, pair_overhead.back());
  }

  const double m = median(mufl_sps), b = median(bare_sps);
  const double overhead = (1 - m / b) * 100;
  const double mr = median(mufl_round_sps), br = median(bare_round_sps);
  const double overhead_round = (1 - mr / br) * 100;
  const bool met = overhead <= kTargetOverheadPct;
  std::printf("\ntraining only (test-set evaluation subtracted from run_round):\n");
  std::printf("  mufl %.1f samples/s, bare %.1f samples/s (medians of %d)\n", m, b, o.reps);
  std::printf("  overhead %.2f %% (target <= %.0f %%: ratio %.2f of the budget) -> %s\n", overhead,
              kTargetOverheadPct, overhead / kTargetOverheadPct, met ? "MET" : "MISSED");
  std::printf("  per-pair overheads: median %.2f %%, min %.2f %%, max %.2f %%\n", median(pair_overhead),
              *std::min_element(pair_overhead.begin(), pair_overhead.end()),
              *std::max_element(pair_overhead.begin(), pair_overhead.end()));
  std::printf("whole round (mufl run_round vs bare train + one evaluation): mufl %.1f, bare %.1f samples/s, "
              "overhead %.2f %%\n",
              mr, br, overhead_round);

  nlohmann::json j = {
      {"bench", "fl_overhead"},
      {"dataset", o.dataset},
      {"task", o.task},
      {"threads", o.threads},
      {"epochs", o.epochs},
      {"batch", o.batch},
      {"reps", o.reps},
      {"samples_per_rep", samples_per_rep},
      {"eval", "subtracted"},
      {"mufl_samples_per_s", std::round(m * 10) / 10},
      {"bare_samples_per_s", std::round(b * 10) / 10},
      {"overhead_pct", std::round(overhead * 100) / 100},
      {"pair_overhead_median_pct", std::round(median(pair_overhead) * 100) / 100},
      {"target_overhead_pct", kTargetOverheadPct},
      {"ratio_to_target", std::round(overhead / kTargetOverheadPct * 100) / 100},
      {"met", met},
      {"round_overhead_pct", std::round(overhead_round * 100) / 100},
      {"mufl_eval_s", std::round(median(mufl_eval_s) * 1000) / 1000},
      {"bare_eval_s", std::round(median(bare_eval_s) * 1000) / 1000},
  };
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::cerr << "fl_overhead: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fl_overhead: " << e.what() << "\n";
    return 1;
  }
}
