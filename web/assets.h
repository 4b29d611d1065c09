#pragma once
// The dashboard's files (web/index.html, style.css and the JavaScript modules listed in
// web/CMakeLists.txt), embedded at build time.
#include <string_view>
#include <vector>

namespace mufl::web {

struct Asset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view data;
};

// Every embedded file.
const std::vector<Asset>& all_assets();
// The file called `name`, or nullptr.
const Asset* find_asset(std::string_view name);

}  // namespace mufl::web
