#pragma once
// ServedDatasets: the built-in data sets' files under mufld's --data-dir as cluster workers
// fetch them (GET /v1/workers/{id}/datasets/…, docs/cluster.md "Data sets on the nodes"):
// each file's size and SHA-256, and the path to stream. Only the names of
// core/dataset_files.h reach the file system, so a request cannot name any other file.
// A file's SHA-256 is computed once and kept while its path, size and modification time stay
// the same: hashing MNIST's 55 MB costs ~0.2 s, which a worker job should not pay each time.
//
// Thread safety: every method may be called from any thread.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::service {

struct ServedFile {
  std::string name;    // "train-images-idx3-ubyte"
  uint64_t bytes = 0;  // its size
  std::string sha256;  // lower-case hex
};

class ServedDatasets {
 public:
  // The files are <data_dir>/datasets/<name>/<file> (mufld's --data-dir).
  explicit ServedDatasets(std::string data_dir);

  // Every file of `dataset`, in core/dataset_files.h's order, with its size and SHA-256
  // (none for "synthetic"). Blocks while it hashes a file it has not hashed at this size and
  // modification time (two calls at once may both hash it; either result is kept).
  // kNotFound: no built-in data set of that name, or one of its files is missing here (the
  // message names the file below the data dir and says how to get it); kUnavailable: a file
  // cannot be read (the message names its path: for the log only).
  Result<std::vector<ServedFile>> manifest(const std::string& dataset);

  // The path of `file` of `dataset`. kNotFound when `dataset` is no built-in data set or
  // `file` is none of its files (nothing else, such as "../x", is ever looked up). Does not
  // check that the file exists.
  Result<std::string> path_of(const std::string& dataset, const std::string& file) const;

  // How many times a file was hashed (cache misses), for tests.
  int64_t files_hashed() const;

 private:
  struct Digest {
    uint64_t bytes = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  Result<ServedFile> describe(const std::string& dataset, const std::string& file);

  const std::string data_dir_;
  mutable std::mutex mu_;
  std::map<std::string, Digest> digests_;  // by path
  int64_t files_hashed_ = 0;
};

}  // namespace mufl::service
