#!/bin/sh
# Runs deploy/grafana/schema-check/check-dashboard.mjs on a broken fixture and passes only when
# the checker fails (exit 1) with exactly the errors EXPECTED lists: every line of EXPECTED is
# an extended regex that must match exactly one of its error lines, and it must print as many
# error lines as EXPECTED has. Exit 77 (skipped) when the checker reports its packages missing.
#
#   expect_check_errors.sh NODE CHECKER EXPECTED [checker arguments...]
set -u
node=$1 checker=$2 expected=$3
shift 3
out=$("$node" "$checker" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 77 ] && exit 77
if [ "$rc" -ne 1 ]; then
  echo "FAIL: the checker exited $rc, want 1 (errors found)"
  exit 1
fi
errors=$(printf '%s\n' "$out" | grep -e ': error: ')
status=0
while IFS= read -r pattern; do
  [ -n "$pattern" ] || continue
  n=$(printf '%s\n' "$errors" | grep -c -E -e "$pattern")
  if [ "$n" -ne 1 ]; then
    echo "FAIL: $n error lines match /$pattern/, want 1"
    status=1
  fi
done <"$expected"
got=$(printf '%s\n' "$errors" | grep -c .)
want=$(grep -c . "$expected")
if [ "$got" -ne "$want" ]; then
  echo "FAIL: $got error lines, want $want (the lines of $expected)"
  status=1
fi
[ "$status" -eq 0 ] && echo "PASS: the checker names each of the $want expected errors and no other"
exit "$status"
