#!/usr/bin/env bash
# What recording costs: operations per second through gitgate with the record on (the normal
# build) versus a build whose appends are skipped (`--features bench-no-record`, a build that
# exists only for this measurement). The upstream is file:// (git's own upload-pack and
# receive-pack, the cheapest there is), so the gateway's own costs show as much as they can.
#
# Two workloads, each run by CLIENTS concurrent clients for SECONDS, alternating builds:
#   ls-remote   `git ls-remote` of a small repository (protocol v2: two HTTP requests, two
#               records: the advertisement and the ls-refs command)
#   push        a one-line commit pushed to the client's own branch (two HTTP requests; records:
#               the advertisement, the push with its decisions, the upstream's result)
#
# Usage: benches/record_bench.sh [ROUNDS]        (default 3 rounds of each build, per workload)
# Environment:
#   BENCH_CLIENTS   concurrent clients (default 4)
#   BENCH_SECONDS   length of each timed run (default 10)
#   BENCH_WORKLOADS the workloads (default "ls-remote push")
#   GITGATE_BIN, GITGATE_BIN_NORECORD   use these binaries instead of building them
#   BENCH_KEEP=1    keep the temporary folder
#
# Prints per workload the median ops/s of each build and the ratio record-on / record-off
# (target >= 0.9).
set -euo pipefail

ROUNDS=${1:-3}
CLIENTS=${BENCH_CLIENTS:-4}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
WORKLOADS=${BENCH_WORKLOADS:-ls-remote push}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gitgate-record-bench.XXXXXX")

if [ -z "${GITGATE_BIN:-}" ] || [ -z "${GITGATE_BIN_NORECORD:-}" ]; then
  target=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
  (cd "$REPO_ROOT" && cargo build --release --locked --features bench-no-record >&2)
  cp "$target/release/gitgate" "$WORK/gitgate-norecord"
  (cd "$REPO_ROOT" && cargo build --release --locked >&2)
  cp "$target/release/gitgate" "$WORK/gitgate-record"
  GITGATE_BIN=$WORK/gitgate-record
  GITGATE_BIN_NORECORD=$WORK/gitgate-norecord
fi

gw_pid=
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The upstream: a small repository with a few commits.
seed=$WORK/seed
git init -q -b main "$seed"
for i in 1 2 3 4 5; do
  echo "line $i" >>"$seed/file.txt"
  git -C "$seed" add file.txt
  git -C "$seed" commit -q -m "commit $i"
done
mkdir -p "$WORK/root"

TOKEN=bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)

# Starts the gateway binary $1 on a fresh state folder and a fresh upstream copy.
start_gateway() {
  local bin=$1 port
  rm -rf "$WORK/root/repo.git" "$WORK/gw"
  git clone -q --bare "$seed" "$WORK/root/repo.git"
  mkdir -p "$WORK/gw"
  port=$(free_port)
  cat >"$WORK/gw/gitgate.toml" <<EOF
[server]
http_listen = "127.0.0.1:$port"
state_dir = "state"

[[upstream]]
name = "local"
url = "file://$WORK/root"

[[token]]
name = "bench"
sha256 = "$TOKEN_SHA"
groups = ["agents"]
EOF
  GITGATE_LOG=warn "$bin" serve --config "$WORK/gw/gitgate.toml" >"$WORK/gw/log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  URL="http://bench:$TOKEN@127.0.0.1:$port/local/repo.git"
}

stop_gateway() {
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=
}

# One client: runs workload $1 until $2 (epoch ns), then prints how many operations succeeded.
client() {
  local workload=$1 end=$2 n=0 dir=$WORK/clients/$3 i=0
  while [ "$(date +%s%N)" -lt "$end" ]; do
    case $workload in
      ls-remote)
        git -c protocol.version=2 ls-remote "$URL" >/dev/null && n=$((n + 1)) ;;
      push)
        i=$((i + 1))
        echo "$i" >"$dir/c$3.txt"
        git -C "$dir" add "c$3.txt"
        git -C "$dir" commit -q -m "client $3 commit $i"
        git -C "$dir" push -q origin "c$3" 2>/dev/null && n=$((n + 1)) ;;
    esac
  done
  echo "$n"
}

# Runs workload $1 against the running gateway; prints ops/s.
measure() {
  local workload=$1 end total=0 c
  mkdir -p "$WORK/clients" "$WORK/counts"
  if [ "$workload" = push ]; then
    # Each client pushes to its own branch of its own clone, made before the clock starts.
    for c in $(seq "$CLIENTS"); do
      rm -rf "$WORK/clients/$c"
      git clone -q "$URL" "$WORK/clients/$c"
      git -C "$WORK/clients/$c" checkout -q -b "c$c"
    done
  fi
  end=$(($(date +%s%N) + SECONDS_PER_RUN * 1000000000))
  for c in $(seq "$CLIENTS"); do
    client "$workload" "$end" "$c" >"$WORK/counts/$c" &
  done
  wait
  for c in $(seq "$CLIENTS"); do total=$((total + $(cat "$WORK/counts/$c"))); done
  python3 -c "print(f'{$total / $SECONDS_PER_RUN:.1f}')"
}

median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

printf '%-10s %12s %12s %7s\n' workload "record on" "record off" ratio
for workload in $WORKLOADS; do
  on=() off=()
  for round in $(seq "$ROUNDS"); do
    # Alternate which build goes first.
    if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
    for which in $order; do
      if [ "$which" = on ]; then bin=$GITGATE_BIN; else bin=$GITGATE_BIN_NORECORD; fi
      start_gateway "$bin"
      ops=$(measure "$workload")
      stop_gateway
      echo "  $workload round $round record $which: $ops ops/s" >&2
      if [ "$which" = on ]; then on+=("$ops"); else off+=("$ops"); fi
    done
  done
  m_on=$(median "${on[@]}")
  m_off=$(median "${off[@]}")
  printf '%-10s %12s %12s %7s\n' "$workload" "$m_on" "$m_off" \
    "$(python3 -c "print(f'{$m_on / $m_off:.2f}')")"
done
