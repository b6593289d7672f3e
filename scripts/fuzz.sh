#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, `--sanitizer none` so stable Rust
# builds them): each for SECONDS (default 30), all of them or those named.
#
#   scripts/fuzz.sh [--dev] [--build-only] [SECONDS] [TARGET…]
#
# --dev builds the targets unoptimised (cargo-fuzz's `--dev`): about half the build time and
# far fewer executions a second; CI's short runs use it, the recorded long runs do not.
# --build-only installs cargo-fuzz if missing and builds the targets, running none.
#
# Each run starts from the committed seeds (fuzz/seeds/TARGET) and the corpus earlier runs
# grew (fuzz/corpus/TARGET, not committed); a crash leaves its input in
# fuzz/artifacts/TARGET and fails the script. Prints one line per target: executions,
# seconds, corpus size. cargo-fuzz is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
profile=()
build_only=
while [ $# -gt 0 ]; do
  case $1 in
    --dev) profile=(--dev) ;;
    --build-only) build_only=1 ;;
    *) break ;;
  esac
  shift
done
secs=${1:-30}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
[ -d seeds/client_decode ] || (cd .. && cargo build -q --bin enc-server && cargo run -q -p enc-e2e --example fuzz_seeds -- fuzz/seeds)
cargo fuzz build ${profile[@]+"${profile[@]}"} --sanitizer none
[ -z "$build_only" ] || exit 0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if cargo fuzz run ${profile[@]+"${profile[@]}"} --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed=1
    tail -40 "$log"
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "$t: $status, ${runs:-?} executions in ${secs} s, corpus $(ls "corpus/$t" | wc -l) inputs"
  rm -f "$log"
done
exit $failed
