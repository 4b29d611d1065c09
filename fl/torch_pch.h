#pragma once
// Precompiled by CMake for every source in fl/ and for the fl tests (see fl/CMakeLists.txt).
#include <torch/torch.h>
