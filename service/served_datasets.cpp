#include "service/served_datasets.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/dataset_files.h"
#include "core/file_io.h"

namespace mufl::service {

namespace {

Status no_dataset(const std::string& dataset) {
  return Status::not_found("no data set named \"" + dataset + "\" (the built-in ones: synthetic, mnist, fashion-mnist)");
}

}  // namespace

ServedDatasets::ServedDatasets(std::string data_dir) : data_dir_(std::move(data_dir)) {}

Result<std::vector<ServedFile>> ServedDatasets::manifest(const std::string& dataset) {
  auto names = dataset_file_names(dataset);
  if (!names) return no_dataset(dataset);
  std::vector<ServedFile> files;
  for (const auto& name : *names) {
    auto f = describe(dataset, name);
    if (!f.ok()) return f.status();
    files.push_back(std::move(*f));
  }
  return files;
}

Result<std::string> ServedDatasets::path_of(const std::string& dataset, const std::string& file) const {
  auto names = dataset_file_names(dataset);
  if (!names) return no_dataset(dataset);
  if (std::find(names->begin(), names->end(), file) == names->end())
    return Status::not_found("data set " + dataset + " has no file \"" + file + "\"");
  return dataset_dir(data_dir_, dataset) + "/" + file;
}

int64_t ServedDatasets::files_hashed() const {
  std::lock_guard lock(mu_);
  return files_hashed_;
}

Result<ServedFile> ServedDatasets::describe(const std::string& dataset, const std::string& file) {
  const std::string path = dataset_dir(data_dir_, dataset) + "/" + file;
  struct stat st {};
  const bool found = ::stat(path.c_str(), &st) == 0;
  if (!found && errno != ENOENT && errno != ENOTDIR)
    return Status::unavailable("cannot stat " + path + ": " + std::strerror(errno));
  if (!found || !S_ISREG(st.st_mode))
    return Status::not_found("mufld has no file datasets/" + dataset + "/" + file +
                             " in its data dir (scripts/setup fetches the data sets)");
  const Digest now{static_cast<uint64_t>(st.st_size), int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                   ""};
  {
    std::lock_guard lock(mu_);
    auto it = digests_.find(path);
    if (it != digests_.end() && it->second.bytes == now.bytes && it->second.mtime_ns == now.mtime_ns)
      return ServedFile{file, now.bytes, it->second.sha256};
  }
  auto sha = sha256_file_hex(path);  // outside the lock: other files' manifests need not wait
  if (!sha.ok()) return sha.status();
  std::lock_guard lock(mu_);
  ++files_hashed_;
  digests_[path] = Digest{now.bytes, now.mtime_ns, *sha};
  return ServedFile{file, now.bytes, *sha};
}

}  // namespace mufl::service
