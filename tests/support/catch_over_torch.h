#pragma once
// LibTorch's headers bring glog's CHECK(condition), which replaces Catch's CHECK when they are
// included after catch.hpp: a failed check then aborts the test binary with a glog line
// instead of being reported. Include this last in a test that includes torch headers, to put
// Catch's CHECK back.
#include <catch2/catch.hpp>

#undef CHECK
#define CHECK(...) INTERNAL_CATCH_TEST("CHECK", Catch::ResultDisposition::ContinueOnFailure, __VA_ARGS__)
