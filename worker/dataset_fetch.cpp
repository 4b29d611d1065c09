#include "worker/dataset_fetch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/dataset_files.h"
#include "core/env.h"
#include "core/file_io.h"

namespace mufl::worker {

namespace {

using nlohmann::json;

// errno's failure of `what`: kInsufficientStorage for a full disk, else kUnavailable.
Status errno_status(const std::string& what) {
  const int err = errno;
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::insufficient_storage(std::move(msg));
  return Status::unavailable(std::move(msg));
}

// A file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  int fd_;
};

// The exclusive lock of a data set's folder, <dir>/.fetch.lock, held while the Fd is open.
Result<std::unique_ptr<Fd>> lock_folder(const std::string& dir) {
  const std::string path = dir + "/.fetch.lock";
  auto fd = std::make_unique<Fd>(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd->is_open()) return errno_status("cannot open " + path);
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) == 0) return fd;
  if (errno == EWOULDBLOCK)
    return Status::unavailable("another worker job on this node is fetching into " + dir + " now");
  // Some NFS mounts take no flock: fetch unlocked (each file still lands whole, by rename).
  if (errno == ENOLCK || errno == EOPNOTSUPP) return fd;
  return errno_status("cannot lock " + path);
}

// Whether `path` is `f`: its size first (a stat), then its SHA-256.
Result<bool> holds(const std::string& path, const ManifestFile& f) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return errno_status("cannot stat " + path);
  }
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != f.bytes) return false;
  auto sha = sha256_file_hex(path);
  if (!sha.ok()) return sha.status();
  return *sha == f.sha256;
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("cannot write " + path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

// A download into <file>.part (created or truncated): what came, checked as it comes.
struct PartFile {
  explicit PartFile(std::string part_path)
      : path(std::move(part_path)), fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) {}

  std::string path;
  Fd fd;
  Sha256 sha;
  uint64_t bytes = 0;
  bool too_long = false;
  Status write_error;

  bool take(std::string_view piece, uint64_t limit) {
    if (piece.size() > limit - bytes) {
      too_long = true;
      return false;
    }
    write_error = write_all(fd.get(), piece, path);
    if (!write_error.is_ok()) return false;
    sha.update(piece);
    bytes += piece.size();
    return true;
  }

  // OK when what came is `f`, complete and on the disk.
  Status check(const ManifestFile& f, const Status& downloaded) {
    if (!write_error.is_ok()) return write_error;
    if (!downloaded.is_ok()) return downloaded;
    const std::string what = f.name + " from mufld: ";
    if (too_long) return Status::invalid_argument(what + "more than the manifest's " + std::to_string(f.bytes) + " bytes");
    if (bytes != f.bytes)
      return Status::invalid_argument(what + std::to_string(bytes) + " bytes, not the manifest's " +
                                      std::to_string(f.bytes) + " (cut short)");
    if (const std::string got = sha.hex(); got != f.sha256)
      return Status::invalid_argument(what + "SHA-256 " + got + ", not the manifest's " + f.sha256);
    if (::fsync(fd.get()) != 0) return errno_status("cannot fsync " + path);
    return Status::ok();
  }
};

// Downloads `f` to <dir>/<name>.part and, once it is checked and synced, renames it into place.
Status fetch_file(const std::string& dir, const ManifestFile& f, const DownloadFile& download) {
  const std::string path = dir + "/" + f.name;
  PartFile part(path + ".part");
  if (!part.fd.is_open()) return errno_status("cannot create " + part.path);
  const Status downloaded = download(f.name, [&](std::string_view piece) { return part.take(piece, f.bytes); });
  Status s = part.check(f, downloaded);
  Env& env = Env::posix();
  if (s.is_ok()) s = env.rename(part.path, path);
  if (s.is_ok()) return env.sync_dir(dir);
  env.remove(part.path);  // best effort: the failure that matters is s
  return s;
}

}  // namespace

Result<DatasetSource> parse_dataset_source(std::string_view text) {
  if (text == "shared") return DatasetSource::kShared;
  if (text == "http") return DatasetSource::kHttp;
  if (text == "auto") return DatasetSource::kAuto;
  return Status::invalid_argument("--datasets must be shared, http or auto");
}

const char* dataset_source_name(DatasetSource source) {
  switch (source) {
    case DatasetSource::kShared: return "shared";
    case DatasetSource::kHttp: return "http";
    case DatasetSource::kAuto: return "auto";
  }
  return "auto";
}

Result<std::vector<ManifestFile>> parse_dataset_manifest(std::string_view body, const std::string& dataset) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("files") || !j["files"].is_array())
    return Status::invalid_argument("the manifest is not a JSON object with \"files\"");
  if (!j.contains("dataset") || j["dataset"] != dataset)
    return Status::invalid_argument("the manifest is not the one of data set " + dataset);
  const auto names = dataset_file_names(dataset);
  if (!names) return Status::invalid_argument("no data set named \"" + dataset + "\"");
  std::vector<ManifestFile> files;
  std::set<std::string> seen;
  for (const auto& e : j["files"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("bytes") ||
        !e["bytes"].is_number_unsigned() || !e.contains("sha256") || !e["sha256"].is_string() ||
        !is_sha256_hex(e["sha256"].get<std::string>()))
      return Status::invalid_argument("a manifest entry is not {\"name\", \"bytes\", \"sha256\"}");
    ManifestFile f{e["name"].get<std::string>(), e["bytes"].get<uint64_t>(), e["sha256"].get<std::string>()};
    if (std::find(names->begin(), names->end(), f.name) == names->end() || !seen.insert(f.name).second)
      return Status::invalid_argument("the manifest names \"" + f.name + "\", which is not one of " + dataset +
                                      "'s files, or twice");
    files.push_back(std::move(f));
  }
  if (files.size() != names->size())
    return Status::invalid_argument("the manifest lists " + std::to_string(files.size()) + " of " + dataset + "'s " +
                                    std::to_string(names->size()) + " files");
  return files;
}

bool all_files_present(const std::string& dir, const std::vector<std::string>& names) {
  return std::all_of(names.begin(), names.end(), [&dir](const std::string& name) {
    struct stat st {};
    return ::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
  });
}

Result<FetchReport> fetch_dataset_files(const std::string& dir, const std::vector<ManifestFile>& files,
                                        const DownloadFile& download) {
  if (Status s = Env::posix().create_dirs(dir); !s.is_ok()) return s;
  auto lock = lock_folder(dir);
  if (!lock.ok()) return lock.status();
  FetchReport report;
  for (const auto& f : files) {
    auto kept = holds(dir + "/" + f.name, f);
    if (!kept.ok()) return kept.status();
    if (*kept) {
      ++report.files_kept;
      continue;
    }
    if (Status s = fetch_file(dir, f, download); !s.is_ok()) return s;
    ++report.files_fetched;
    report.bytes_fetched += f.bytes;
  }
  return report;
}

}  // namespace mufl::worker
