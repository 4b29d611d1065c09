#pragma once
// The version mufld reports in --version, /healthz and mufl_build_info; CMake's project
// version, passed in by service/CMakeLists.txt.
namespace mufl::service {
inline constexpr const char* kVersion = MUFL_VERSION;
}  // namespace mufl::service
