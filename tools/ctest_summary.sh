#!/usr/bin/env bash
# Reads the log of one `ctest` run and prints "PASSED FAILED SKIPPED" (three
# numbers, one line) for tools/test.sh's summary. A skipped test (GoogleTest's
# GTEST_SKIP, which gtest_discover_tests reports to ctest as Skipped) counts
# as skipped only if it is on tools/allowed_skips.txt; any other skip counts
# as failed, and is named on stderr. Every test lands in exactly one count.
# Usage: tools/ctest_summary.sh CTEST_LOG [ALLOW_LIST]
set -euo pipefail
log=$1
allowed=${2:-$(dirname "$0")/allowed_skips.txt}
pass=$(grep -c ' Passed ' "$log" || true)
fail=$(grep -cE '\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Not Run' "$log" || true)
skip=0
# The allow-list's names: the first word of each line, comments and blank lines ignored.
names=$(sed -e 's/#.*//' "$allowed" | awk 'NF { print $1 }')
# ctest's line for a skipped test: "  3/202 Test  #3: Suite.Name .....***Skipped   0.01 sec".
for t in $(sed -n 's/^.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*Skipped.*$/\1/p' "$log"); do
  if grep -qxF -- "$t" <<<"$names"; then
    skip=$((skip + 1))
  else
    echo "unexpected skip (not on $allowed): $t" >&2
    fail=$((fail + 1))
  fi
done
echo "$pass $fail $skip"
