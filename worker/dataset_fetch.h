#pragma once
// A data set's files on a worker's node (docs/cluster.md, "Data sets on the nodes"). A worker
// reads <data_dir>/datasets/<name>/: files on shared storage (NFS, Lustre) holding mufld's
// own, or files it fetched from mufld into that folder (node-local scratch). A fetched file is
// written beside its place as <file>.part, checked against mufld's manifest (size and
// SHA-256), fsynced and renamed into place, so a reader never sees part of one; a file already
// there with the manifest's size and SHA-256 is kept (a later worker job on the node reuses
// it). Torch-free.
//
// Thread safety: the functions keep no state; two processes fetching into one folder at once
// take turns (fetch_dataset_files holds a lock file meanwhile).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mufl::worker {

// Where a worker's data sets come from (mufl-worker --datasets).
enum class DatasetSource {
  kShared,  // the files under --data-dir as they are; nothing is fetched
  kHttp,    // each job checks its files against mufld's manifest and fetches what differs
  kAuto,    // kShared when every file of the data set is there, else kHttp (the default)
};
// "shared", "http" or "auto"; kInvalidArgument for anything else.
Result<DatasetSource> parse_dataset_source(std::string_view text);
// The name parse_dataset_source reads ("shared", "http", "auto").
const char* dataset_source_name(DatasetSource source);

// One file of mufld's manifest (GET /v1/workers/{id}/datasets/{name}).
struct ManifestFile {
  std::string name;    // one of the data set's files (core/dataset_files.h): safe as a file name
  uint64_t bytes = 0;
  std::string sha256;  // 64 lower-case hex digits
};

// The manifest's body, checked: {"dataset": `dataset`, "files": [{"name", "bytes", "sha256"},
// …]} naming each of the data set's files (core/dataset_files.h) exactly once, and no other.
// Unknown keys are ignored. kInvalidArgument saying what is wrong.
Result<std::vector<ManifestFile>> parse_dataset_manifest(std::string_view body, const std::string& dataset);

// Whether every one of `names` is a regular file in `dir` (the check of --datasets auto).
bool all_files_present(const std::string& dir, const std::vector<std::string>& names);

// Gets one file's bytes from mufld (GET …/datasets/{name}/{file}), giving each piece to
// `on_data` as it arrives; on_data returning false ends the transfer, and the call returns.
// OK when the response was a success (its whole body, or up to where on_data stopped it, went
// to on_data); kPermissionDenied when mufld refused the worker's token; any other failure
// (kUnavailable: an HTTP error, a broken or silent connection) as it was.
using DownloadFile =
    std::function<Status(const std::string& file, const std::function<bool(std::string_view)>& on_data)>;

struct FetchReport {
  int files_kept = 0;        // already in place with the manifest's size and SHA-256
  int files_fetched = 0;     // downloaded, checked and moved into place
  uint64_t bytes_fetched = 0;
};

// Makes `dir` (created when missing) hold every file of `files`: one there with its size and
// SHA-256 is kept; any other is downloaded to <file>.part, checked, fsynced and renamed over
// it, and the folder is synced. Holds an exclusive lock on <dir>/.fetch.lock (flock)
// throughout. Blocks on the disk and the network; hashing a kept file reads it whole.
// On failure nothing of that file is left but what was there before (its .part is removed),
// and the files fetched before it stay in place. Fails with:
//  kInvalidArgument: the bytes that came are not the manifest's (too many, too few, another
//    SHA-256): a tampered or truncated download;
//  kUnavailable: another process holds the lock (a worker job on this node fetches the same
//    data set now: try again later), or `dir` cannot be written (disk errors: also
//    kInsufficientStorage when full), or what `download` failed with;
//  kPermissionDenied: as `download` returns it (mufld refused the token).
Result<FetchReport> fetch_dataset_files(const std::string& dir, const std::vector<ManifestFile>& files,
                                        const DownloadFile& download);

}  // namespace mufl::worker
