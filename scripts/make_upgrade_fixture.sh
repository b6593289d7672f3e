#!/usr/bin/env bash
# Writes the data directory of the upgrade test (crates/e2e/tests/fixtures/upgrade-v14/) with
# the binaries of an earlier build: a server that has only /v1 objects, versions and a shared
# vault, as users of that build left it.
#
# Usage: scripts/make_upgrade_fixture.sh OLD_BIN_DIR OUT_DIR
#   OLD_BIN_DIR: target/debug (or release) of a checkout of the earlier commit, built with
#                `cargo build --bins -p enc-server -p enc-cli`
# The fixture committed was made from d75af37 (the last commit before vault trees).
set -euo pipefail
old=$(cd "$1" && pwd)
out=$2
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cd "$work"
"$old/enc-server" --data-dir "$out/data" --listen "127.0.0.1:$port" --log warn &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
fp=$("$old/enc-server" --data-dir "$out/data" cert fingerprint)
url="https://127.0.0.1:$port"
# The passphrases the e2e harness gives these names.
alice() { ENC_PASSPHRASE="alice passphrase, long enough 42" ENC_CONFIG_DIR="$work/alice" "$old/enc" "$@"; }
bob() { ENC_PASSPHRASE="bob passphrase, long enough 42" ENC_CONFIG_DIR="$work/bob" "$old/enc" "$@"; }
alice register --server "$url" --user alice --fingerprint "$fp" \
  --token "$("$old/enc-server" --data-dir "$out/data" user create alice --role admin)"
bob register --server "$url" --user bob --fingerprint "$fp" \
  --token "$(alice user create bob --role user)"
mkdir -p photos
echo "first version" > report.txt
alice push report.txt
echo "second version" > report.txt
alice push report.txt
echo "a cat" > photos/cat.txt
alice push photos/
alice vault create team
echo "the plan" > plan.txt
alice push plan.txt --vault team
alice vault share team bob
kill -TERM "$server"
wait "$server" || true
rm -f "$out/data/"*.log
echo "fixture written to $out (alice, an admin, and bob)"
