#include "service/admin_token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tenants/token.h"

namespace mufl::service {

Result<AdminToken> load_or_create_admin_token(const std::string& data_dir, const std::string& from_env,
                                              RandomSource& rng) {
  if (!from_env.empty()) return AdminToken{from_env, "MUFL_ADMIN_TOKEN"};
  const std::string path = data_dir + "/admin.token";

  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0)
      return Status::failed_precondition(path + " is readable by other users; chmod 600 it");
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = ss.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (!in && !in.eof()) return Status::internal("cannot read " + path);
    if (token.empty()) return Status::failed_precondition(path + " is empty; delete it to get a new token");
    return AdminToken{token, path};
  }

  std::string token = tenants::generate_token(rng);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::internal("cannot create " + path + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Status::internal("cannot write " + path + ": " + std::strerror(errno));
  }
  return AdminToken{token, path};
}

}  // namespace mufl::service
