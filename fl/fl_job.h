#pragma once
// FlJob: one federated training job — a model with a head per task, its clients' partitions of
// a data set, an aggregation strategy — advanced one round at a time by whoever owns it (the
// executor). Torch-free: the rest of mufl includes this header, never torch.
//
// A round: sample `clients_per_round` clients; each may drop out with `client_failure_rate`;
// when at least `min_clients` report, aggregate their updates and evaluate on the test set;
// otherwise draw again, and fail after `max_round_attempts` draws. On a federation the
// clients are real (fl/client_pool.h): they drop out by not reporting before the deadline,
// and the round's evaluation is the sample-weighted mean of theirs.
//
// Determinism: every random choice comes from (seed, round, attempt, client), so the same job
// gives the same weights, run straight through or resumed from a checkpoint after any round.
// Thread safety: one thread at a time per job; distinct jobs may run on distinct threads.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/activity.h"
#include "core/federation.h"
#include "core/result.h"
#include "fl/client_pool.h"
#include "fl/encoder_gradient.h"

namespace mufl::fl {

struct ClientTask;         // fl/round_clients.h
struct ClientResult;       // fl/round_clients.h
struct LocalTrainOptions;  // fl/training.h

struct JobConfig {
  std::string dataset;             // catalog name; empty for a job on a federation
  // The federation whose real clients train it ("fed_…"; empty: the catalog data set's
  // partitions, simulated in this process). Its clients come from RuntimeOptions::clients, its
  // model's input from `schema`, and `clients`, `partition` and `client_failure_rate` are unused.
  std::string federation;
  DataSchema schema;
  // Names the job's rounds to its clients (the executor: the group id); unique among the jobs
  // on one federation.
  std::string name;
  int64_t round_timeout_seconds = 300;  // a federation's clients have this long to report
  // One head each; one task for an unmerged activity. ssl heads go only with ssl heads, and
  // only on a catalog data set (kInvalidArgument, field "tasks").
  std::vector<std::string> tasks;
  // The heads' keys, parallel to `tasks` (unique, [A-Za-z0-9_]); empty means the task names.
  // A merged group keys heads by activity id, since two activities may train the same task.
  std::vector<std::string> heads;
  int64_t rounds = 1;              // rounds this job runs
  // The job's first round is round round_offset + 1 of its lineage: a group split from another
  // carries on the parent's round count, so its randomness and learning rate go on from there.
  int64_t round_offset = 0;
  // Task affinity lookahead every `affinity_every` batches on every client (0: off; needs two or
  // more heads). See LocalTrainOptions in fl/training.h.
  int affinity_every = 0;
  // How the encoder combines the heads' gradients (fl/training.h): kSum for a group born of a split.
  EncoderGradient encoder_gradient = EncoderGradient::kMean;
  // Whether the tasks' encoder gradients are balanced first (fl/encoder_gradient.h).
  TaskBalance balance = TaskBalance::kNone;
  // Heads (keys) whose members end with the job's next round; the executor sets them before each
  // round (FlJob::set_final_heads). Every head's round is final also at the job's own last round
  // (`rounds`). A final round gets ssl's full linear probe (fl/linear_probe.h) and, with
  // head_calibration in a job of two or more heads on a catalog data set, the head calibration
  // (fl/head_calibration.h; not for ssl heads). Unknown keys are ignored.
  std::vector<std::string> final_heads;
  bool head_calibration = false;
  // The head calibration's clients: every client of the partition instead of the round's (its
  // sampling variance gone, at about 6 times the pass; docs/merge-and-split.md).
  bool calibrate_every_client = false;
  int64_t clients = 32;
  int64_t clients_per_round = 5;
  int64_t local_epochs = 1;
  int64_t batch_size = 32;
  double learning_rate = 0.05;
  // Client learning rate in round r (0-based) is learning_rate · lr_decay^r.
  double lr_decay = 0.99;
  std::string aggregator = "fedavg";
  // "samples" (FedAvg) or "cosine" (FedReID: by each update's cosine distance from the global
  // model, fl/strategy.h cosine_distance).
  std::string weighting = "samples";
  // local_epochs is the largest client's; each client trains personalized_epochs() of them.
  bool personalized_epochs = false;
  // Where a client starts its local training: "fedavg" (the global model) or "fedema" (FedEMA:
  // an EMA of the model it kept from its last round and the global one, fl/fedema.h). FedEMA
  // keeps each simulated client's model under client_state_dir (fl/client_states.h); a
  // federation's clients keep theirs themselves (fl/assignment.h, train_assignment).
  std::string local_update = "fedavg";
  double ema_lambda = 0.0;       // FedEMA's λ; 0 is "auto" (τ / the client's first divergence)
  std::string client_state_dir;  // required with "fedema" on a data set; one job's own directory
  // FedReID's client clustering (fl/client_clustering.h); 1 (the default) is off. With k in
  // 2..16, lineage round `cluster_round` (1-based; a job that starts later clusters in its
  // first round) trains every client from the global model, with no simulated dropouts, and
  // clusters them by the cosine similarity of their updates into k clusters. Each cluster's
  // model is its members' aggregate of that round, made by a copy of the job's strategy (and
  // its server state); from then on each round's sampled clients train from their own
  // cluster's model and are aggregated into it, and a cluster none of whose members was
  // sampled keeps its model. Catalog data sets only, and not with ssl heads
  // (kInvalidArgument, field "client_clusters"). See docs/tasks.md.
  int client_clusters = 1;
  int64_t cluster_round = 1;
  std::string partition = "iid";  // "iid" | "dirichlet"
  double dirichlet_alpha = 0.5;
  uint64_t seed = 0;
  double prox_mu = 0.0;             // FedProx; 0 is off
  double client_failure_rate = 0.0; // chance that a sampled client does not report
  int64_t min_clients = 1;          // reports needed to aggregate a round
  int max_round_attempts = 3;       // draws of a round before the job fails

  // The job an activity asks for (one task), with the service's defaults for the rest.
  static JobConfig from_spec(const ActivitySpec& spec);
};

struct RuntimeOptions {
  std::string data_dir = "var";  // data sets live in <data_dir>/datasets/<name>/
  std::string device = "cpu";    // LibTorch device: "cpu" or "cuda:N"
  // The clients of a federation (JobConfig::federation), for jobs on one; unset: none.
  std::function<std::shared_ptr<ClientPool>(const std::string& federation)> client_pools;
};

struct TaskMetrics {
  std::string head;    // the head's key
  std::string task;
  double loss = 0;
  std::string metric;  // "accuracy", "iou" or "mse"
  double value = 0;
};

// One cluster of clients (JobConfig::client_clusters) after a round.
struct ClusterReport {
  std::vector<int64_t> clients;  // its members (0-based client numbers), ascending
  int64_t samples = 0;           // its members' training samples: its weight in the round's eval
  int64_t clients_reported = 0;  // members that trained in this round
  // Its model on the test set, weighted label by label to the label mix of its members'
  // training data: how its clients see it on data like their own (docs/tasks.md). On a
  // federation: the held-out evaluations of its clients that reported this round (empty when
  // none did).
  std::vector<TaskMetrics> eval;
};

struct RoundReport {
  int64_t round = 0;            // 1-based, counted from the lineage's start (round_offset + n)
  int attempts = 0;             // draws it took
  int64_t clients_sampled = 0;  // over all attempts
  int64_t clients_reported = 0; // in the aggregated attempt
  int64_t clients_dropped = 0;  // over all attempts
  int64_t samples = 0;          // samples trained in the aggregated attempt (all epochs)
  double train_loss = 0;        // mean client loss, weighted by samples
  double learning_rate = 0;     // client learning rate used
  std::vector<TaskMetrics> eval;  // one per head, in the config's order
  // Affinity lookahead, when on: affinity[i][j] is head i's effect on head j (see training.h),
  // averaged over the reporting clients weighted by their samples; empty when off.
  std::vector<std::vector<double>> affinity;
  int64_t lookaheads = 0;         // lookahead batches over all reporting clients
  double affinity_seconds = 0;    // time they took, included in `seconds`
  // Each head's alignment with its mates (LocalResult::alignment), by head key, averaged over
  // the reporting clients that measured it, weighted by their samples; empty for one head or
  // when no client measured it (a real client of an older build).
  std::map<std::string, double> alignment;
  // Samples the head calibration trained after aggregation (JobConfig::head_calibration); 0: none.
  int64_t calibration_samples = 0;
  std::vector<std::string> calibrated;  // the heads it calibrated (keys)
  double seconds = 0;
  // Of `seconds`, the time spent waiting for clients to be online and to report (real
  // clients); the rest is the server's own work (sampling, aggregation, evaluation).
  double client_wait_seconds = 0;
  // The energy the real clients metered over their leases in every attempt of the round, as
  // they reported it, and their meters ("model", "rapl", "nvml", several joined by '+' in
  // that sorted order; "" when no client reported energy).
  double client_joules = 0;
  std::string client_meters;
  bool stopped = false;         // should_stop fired: nothing was aggregated, the round is undone
  // Client clustering (JobConfig::client_clusters), from the clustering round on: one entry per
  // cluster, and `eval` is the mean of theirs weighted by their `samples`. Empty before.
  std::vector<ClusterReport> clusters;
};

// The train and test samples of ssl's probe in a round that is no head's last.
inline constexpr int64_t kQuickProbeSamples = 2000;

class FlJob {
 public:
  // Loads the data set and builds the model and partitions. kInvalidArgument for a bad config,
  // kNotFound when the data set's files are missing.
  static Result<std::unique_ptr<FlJob>> create(const JobConfig& config, const RuntimeOptions& options);
  // A new job (rounds_done 0, fresh server optimiser state) that starts from `source`'s
  // encoder and from the heads of `source` that `config` keeps (same key and task); heads new
  // in `config` start from their seeded initialisation (seed, task, and the number of heads of
  // the same task before it in `config`). This is how a group takes in a
  // late-arriving activity, lets a finished one go, or splits. The data set must be the same.
  // With client clustering formed in `source`, the new job keeps its clusters: the same clients
  // in each, each cluster's model built from `source`'s as above, each with a fresh server state.
  static Result<std::unique_ptr<FlJob>> derive(const FlJob& source, const JobConfig& config,
                                               const RuntimeOptions& options);
  ~FlJob();

  const JobConfig& config() const;
  int64_t rounds_done() const;
  bool finished() const { return rounds_done() >= config().rounds; }

  // Runs the next round. `should_stop` is asked before every batch; when it says stop, the
  // round is abandoned (report.stopped) and the job is as before it. Failures that the same
  // settings would meet again come back as kFailedPrecondition with the reason: too few
  // clients after every attempt, a NaN or infinite loss ("training diverged ..."). Anything
  // LibTorch or the allocator throws (c10::Error, a CUDA out-of-memory, std::bad_alloc) comes
  // back as kInternal "round N: <message>". After a failure the job's state is unspecified:
  // restore() a checkpoint (or build the job again) before the next round.
  //
  // No method of FlJob throws: every exception from LibTorch becomes a Status.
  Result<RoundReport> run_round(const std::function<bool()>& should_stop = {});

  // The whole job state after rounds_done() rounds (weights, strategy state, round), as bytes;
  // restore() makes a fresh job with the same config continue exactly from there.
  Result<std::string> checkpoint() const;
  Status restore(const std::string& bytes);

  // Clients' kept states (FedEMA): a state produced in round r is read from round r+1 on, so a
  // restore() of the checkpoint of any round finds exactly the states of that round. The owner
  // calls this once the checkpoints it trusts are those of rounds ≥ `oldest_round` (lineage
  // rounds): the state files none of them needs are removed. OK and nothing to do without
  // FedEMA. Errors: the first file that could not be removed (the rest are still tried).
  Status release_client_states(int64_t oldest_round);

  // The model alone, as written by torch::save(MultiTaskNet): load it with torch::load into a
  // MultiTaskNet built with the same tasks (see docs/model-format.md).
  // With client clustering, once clustered, the model of the largest cluster (most training
  // samples; on a tie the one with the smallest client): the other clusters' models live in
  // the checkpoints.
  Result<std::string> export_model() const;
  // One head's model: the encoder and head `head_key`, saved as a single-task MultiTaskNet whose
  // head is named after its task, so it loads like the model of an activity that trained alone.
  Result<std::string> export_model(const std::string& head_key) const;
  // With client clustering, once clustered: head `head_key` of every cluster's model, as
  // export_model(head_key) saves it, in cluster order (RoundReport::clusters); empty otherwise.
  Result<std::vector<std::string>> export_cluster_models(const std::string& head_key) const;
  const std::vector<std::string>& heads() const;
  // Turns the affinity lookahead on (every n batches) or off (0) from the next round on; it
  // never changes the weights (a group that stops consolidating turns it off).
  void set_affinity_every(int n);
  // JobConfig::final_heads from the next round on (the executor sets it before every round).
  void set_final_heads(const std::vector<std::string>& keys);

  // Loss and metric of the current global model on the test set (with client clustering, once
  // the clients are clustered: the clusters' as in RoundReport::clusters, and their mean
  // weighted by their samples; an ssl head's metric is the linear probe's accuracy,
  // fl/linear_probe.h: a fit on the training set's labels; see docs/tasks.md). A round reports
  // this only when it is a head's last (final_heads); its other rounds score ssl with a probe on
  // kQuickProbeSamples train and test samples. A job on a federation has
  // none: its rounds report the clients' own evaluations (federated evaluation), and this is
  // kFailedPrecondition.
  Result<std::vector<TaskMetrics>> evaluate() const;
  // Each client's view: the model it trains from (the global one, or its cluster's) on the test
  // set weighted label by label to its training data's label mix, averaged over the clients
  // weighted by their samples. With client clustering, once clustered, what evaluate() gives;
  // otherwise the global model on the test set reweighted to the training label mix, to compare
  // the two alike (bench/algorithms). Not for ssl (a probe per label); kFailedPrecondition on
  // a federation.
  Result<std::vector<TaskMetrics>> evaluate_on_client_data() const;

 private:
  struct State;
  explicit FlJob(std::unique_ptr<State> state);
  static Result<std::unique_ptr<FlJob>> build(const JobConfig& config, const RuntimeOptions& options);
  // A round: the clients train (train_clients, drawing each attempt's clients in draw_clients
  // and summing each report as it comes in add_result), the server aggregates (aggregate, the
  // head calibration included) and evaluates (evaluate_round). RoundWork carries the round.
  struct RoundWork;
  Result<RoundReport> train_round(const std::function<bool()>& should_stop);
  LocalTrainOptions local_options(double learning_rate) const;
  // The attempts of a round until one has min_clients reports; report.stopped on a stop.
  Status train_clients(RoundWork& w, const std::function<bool()>& should_stop);
  // One attempt's clients that train, by the model they start from.
  Result<std::vector<std::vector<ClientTask>>> draw_clients(RoundWork& w, int attempt,
                                                             const std::function<bool()>& should_stop);
  void add_result(RoundWork& w, size_t start, ClientResult result);
  Status aggregate(RoundWork& w);
  // The clients' alignment (LocalResult::alignment) into the report, by head key.
  void average_alignment(RoundWork& w) const;
  Status evaluate_round(RoundWork& w, bool full_probe);
  // A clustered round's metrics and its clusters' reports: each cluster's model on test data
  // with its members' label mix, or on a federation its clients' own evaluations.
  void report_clusters(RoundWork& w);
  // The head calibration of the round's clients, after its aggregation (fl/head_calibration.h),
  // recorded in `report`. It does not stop: the round's aggregate is already in the model.
  Status calibrate(const std::vector<ClientTask>& clients, const LocalTrainOptions& local, RoundReport& report);
  // evaluate(), with ssl's full probe or the quick one.
  Result<std::vector<TaskMetrics>> evaluate(bool full_probe) const;
  // Whether the next round is head `head`'s last (JobConfig::final_heads, or the job's last).
  bool final_round_of(size_t head) const;
  std::unique_ptr<State> s_;
};

// Sets LibTorch's intra-op thread count for the calling thread (OpenMP keeps it per thread:
// call it in each thread that trains); threads <= 0 leaves it. kInternal when LibTorch refuses.
Status set_torch_threads(int threads);
// LibTorch's intra-op thread count as the calling thread sees it (0 when LibTorch cannot say).
int torch_threads();

// CUDA devices LibTorch can use: 0 on a CPU build, a machine without a GPU, or a broken driver.
int cuda_device_count();

// OK when the data set's files are in place under `data_dir` (for checks at submission).
Status check_dataset_available(const std::string& data_dir, const std::string& dataset);

}  // namespace mufl::fl
