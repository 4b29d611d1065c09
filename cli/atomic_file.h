#pragma once
// Writing a downloaded file so that no reader ever sees half of it, and so that an existing
// file is never replaced by accident.
#include <string>
#include <string_view>

#include "core/status.h"

namespace mufl::cli {

// Writes `bytes` to a new temp file beside `path` (`mode` less the umask; 0600 for a secret), fsyncs it, and
// moves it into place: with `overwrite` by rename (an existing file is replaced atomically),
// without it by link, which fails when `path` exists. The parent directory must exist.
// kAlreadyExists (existing file untouched) when `path` exists and !overwrite; kInternal with
// the OS's reason otherwise. The temp file never outlives the call.
Status write_file_atomically(const std::string& path, std::string_view bytes, bool overwrite, unsigned mode = 0666);

}  // namespace mufl::cli
