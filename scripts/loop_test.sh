#!/usr/bin/env bash
# Runs one end-to-end test N times in a row and counts failures: the check that a test is not
# flaky (issue 13, item 24). Usage: scripts/loop_test.sh TEST_NAME [N]
# Build the tests first (`cargo test -p enc-e2e --test e2e --no-run`); run under load (for
# example with another suite going) to shake out timing-dependent failures.
set -uo pipefail
cd "$(dirname "$0")/.."
name="$1"
runs="${2:-200}"
bin=$(ls -t target/debug/deps/e2e-* | grep -v '\.d$' | head -1)
fails=0
for i in $(seq "$runs"); do
  if ! "$bin" --exact "$name" --test-threads 1 >"/tmp/loop_test.$$.log" 2>&1; then
    fails=$((fails + 1))
    cp "/tmp/loop_test.$$.log" "/tmp/loop_test.failure.$i.log"
    echo "run $i failed (log in /tmp/loop_test.failure.$i.log)"
  fi
done
rm -f "/tmp/loop_test.$$.log"
echo "$name: $((runs - fails)) of $runs runs passed"
[ "$fails" -eq 0 ]
