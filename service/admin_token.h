#pragma once
// The operator's (admin) token: MUFL_ADMIN_TOKEN when set, else the token kept in
// <data-dir>/admin.token, generated at the first start and written with mode 0600.
#include <string>

#include "core/random.h"
#include "core/result.h"

namespace mufl::service {

struct AdminToken {
  std::string token;
  std::string source;  // "MUFL_ADMIN_TOKEN" or the file's path, for the start-up message
};

// Returns the admin token. `from_env` is MUFL_ADMIN_TOKEN's value (empty when unset). A new
// file is created with O_EXCL and mode 0600 and fsynced. kInternal when the file cannot be read
// or written; kFailedPrecondition when the file exists but is empty, or is readable by others
// (mode not 0600 or stricter).
Result<AdminToken> load_or_create_admin_token(const std::string& data_dir, const std::string& from_env,
                                              RandomSource& rng);

}  // namespace mufl::service
