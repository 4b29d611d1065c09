#pragma once
// The catalog: which data sets and tasks a tenant may ask for. It is data, not code: each entry
// names the target, loss and metric that the training runtime (fl/) implements behind it.
// The catalog is immutable after construction; share it freely between threads.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mufl {

struct TaskInfo {
  std::string name;         // "class"
  // "label" (one value per image), "dense" (one value per pixel) or "embedding" (ssl: a
  // vector per image, learnt without labels)
  std::string kind;
  int outputs = 0;          // classes for label tasks, channels per pixel for dense tasks
  std::string target;       // how the target is derived from image and label
  std::string loss;         // training loss
  std::string metric;       // reported test metric
  std::string description;  // one line for people
};

struct DatasetInfo {
  std::string name;                // "mnist"
  std::string description;
  std::vector<int> input_shape;    // channels, height, width
  int classes = 0;                 // labels 0..classes-1
  int train_samples = 0;
  int test_samples = 0;
  std::string source;              // where the files come from
  std::vector<std::string> tasks;  // task names valid on this data set
};

class Catalog {
 public:
  Catalog(std::vector<DatasetInfo> datasets, std::vector<TaskInfo> tasks);

  // The catalog this build ships: synthetic, mnist and fashion-mnist with the eight tasks.
  static const Catalog& builtin();

  // nullptr when there is no such data set / task.
  const DatasetInfo* dataset(std::string_view name) const;
  const TaskInfo* task(std::string_view name) const;
  // True when `task` exists and may be trained on `dataset`.
  bool supports(std::string_view dataset, std::string_view task) const;

  const std::vector<DatasetInfo>& datasets() const { return datasets_; }
  const std::vector<TaskInfo>& tasks() const { return tasks_; }

  // {"datasets": [...], "tasks": [...]} as served by GET /v1/catalog.
  nlohmann::json to_json() const;

 private:
  std::vector<DatasetInfo> datasets_;
  std::vector<TaskInfo> tasks_;
};

}  // namespace mufl
