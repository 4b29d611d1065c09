#!/usr/bin/env bash
# CTest's fuzz_http_short: SOURCE_DIR SECONDS. Runs the libFuzzer build of build-fuzz/ (made by
# scripts/setup where clang is installed) for SECONDS from the seed corpus, new inputs in a temp
# dir; 77 (skipped) when there is no such build. A crash fails the test and is saved in
# tests/fuzz/crashes/, where fuzz_corpus_replay replays it from then on.
set -euo pipefail
cd "$1"
bin="${MUFL_FUZZ_BUILD_DIR:-build-fuzz}/tests/fuzz_http"
[ -x "$bin" ] || { echo "fuzz_http_short: $bin not built (no clang); skipped"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
exec "$bin" -max_total_time="$2" -max_len=8192 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=tests/fuzz/crashes/ "$work" tests/fuzz/corpus
