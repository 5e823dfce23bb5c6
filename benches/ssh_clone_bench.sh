#!/usr/bin/env bash
# Clone throughput over SSH: straight from an OpenSSH sshd upstream (git-shell forced by
# authorized_keys `command=`) versus through gitgate's SSH front door, with the same repository
# behind the gateway as a file:// upstream and as an ssh:// upstream (that same sshd). The three
# sides run interleaved, the order rotating between runs.
#
# Usage: benches/ssh_clone_bench.sh [RUNS]      (default 5 runs of each side)
# Environment:
#   BENCH_SIDES      the sides to run (default "direct gw-file gw-ssh"; direct is required)
#   BENCH_SIZE_MIB   approximate packed size of the repository (default 100)
#   BENCH_COMMITS    number of commits (default 300)
#   BENCH_FILES      files touched per commit (default 8), out of a pool of 2000 paths
#   BENCH_DIR        reuse this folder (the repository is generated once and kept there)
#   BENCH_KEEP=1     keep the temporary folder
#   BENCH_LOG        GITGATE_LOG for the gateway (default info); its log is $WORK/gateway/gitgate.log
#   GITGATE_BIN      the gateway binary (default: target/release/gitgate, built here)
#
# Prints the median clone time of each side, the throughput ratio of each gateway side
# (gateway throughput / direct throughput = direct time / gateway time; target >= 0.9) and the
# gateway's peak RSS per side: VmHWM, reset through /proc/PID/clear_refs before every gateway
# clone, the largest value over the runs. The git processes the gateway runs (upload-pack of the
# file:// upstream) are not counted; nor is anything of sshd.
set -euo pipefail

RUNS=${1:-${BENCH_RUNS:-5}}
read -r -a SIDES <<<"${BENCH_SIDES:-direct gw-file gw-ssh}"
SIZE_MIB=${BENCH_SIZE_MIB:-100}
COMMITS=${BENCH_COMMITS:-300}
FILES=${BENCH_FILES:-8}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

bash "$REPO_ROOT/scripts/install-test-deps.sh" >&2
if [ -z "${GITGATE_BIN:-}" ]; then
  (cd "$REPO_ROOT" && cargo build --release --locked >&2)
  GITGATE_BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/gitgate
fi

if [ -n "${BENCH_DIR:-}" ]; then
  WORK=$BENCH_DIR
  mkdir -p "$WORK"
  KEEP=1
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gitgate-ssh-bench.XXXXXX")
  KEEP=${BENCH_KEEP:-0}
fi
WORK=$(cd "$WORK" && pwd)

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    # Each daemon leads its own process group (setsid): take its children (sshd sessions,
    # git-shell, upload-pack) too.
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK/clones"
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# git isolated from the machine's configuration, as in the tests.
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
mkdir -p "$HOME"
printf '[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n' >"$HOME/.gitconfig"
unset SSH_AUTH_SOCK

# --- 1. The repository: that of benches/clone_bench.sh ---------------------------------------
ROOT=$WORK/root
REPO=$ROOT/bench.git
if [ ! -f "$REPO/bench-done" ]; then
  rm -rf "$REPO"
  git init -q --bare --initial-branch=main "$REPO"
  # base64 text packs to ~3/4 of its size: aim the raw bytes at SIZE_MIB / 0.76.
  file_bytes=$(( SIZE_MIB * 1024 * 1024 * 100 / 76 / (COMMITS * FILES) ))
  raw_bytes=$(( file_bytes * 3 / 4 ))
  echo "generating $COMMITS commits x $FILES files x ~$((file_bytes / 1024)) KiB..." >&2
  {
    for ((c = 1; c <= COMMITS; c++)); do
      printf 'commit refs/heads/main\nmark :%d\n' "$c"
      printf 'committer Bench <bench@example.com> %d +0000\n' "$((1700000000 + c * 60))"
      printf 'data <<EOM\ncommit %d\nEOM\n' "$c"
      if ((c > 1)); then printf 'from :%d\n' "$((c - 1))"; fi
      for ((f = 0; f < FILES; f++)); do
        n=$(( ((c - 1) * FILES + f) * 7919 % 2000 ))
        printf 'M 100644 inline src/mod%02d/dir%d/file%04d.txt\ndata <<EOF_BENCH_BLOB\n' \
          "$((n % 40))" "$((n % 7))" "$n"
        head -c "$raw_bytes" /dev/urandom | base64 -w 76
        printf 'EOF_BENCH_BLOB\n'
      done
    done
  } | git -C "$REPO" fast-import --quiet
  # One pack with a bitmap, as a served repository would have.
  git -C "$REPO" repack -q -a -d -b --window=0
  touch "$REPO/bench-done"
fi
PACK_BYTES=$(du -cb "$REPO"/objects/pack/*.pack | tail -1 | cut -f1)
echo "repository: $(git -C "$REPO" rev-list --count main) commits," \
  "$(git -C "$REPO" ls-tree -r main | wc -l) files, pack $((PACK_BYTES / 1024 / 1024)) MiB" >&2

# --- 2. The SSH upstream: OpenSSH sshd, keys only, git-shell forced (tests/harness/sshd.rs) ---
SSHD=$WORK/sshd
rm -rf "$SSHD"
mkdir -p "$SSHD"
keygen() { ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"; }
keygen "$SSHD/host_key" upstream-host
keygen "$SSHD/client_key" direct-client # the direct side's client
keygen "$SSHD/gateway_key" gitgate      # the key the gateway vaults for its ssh:// upstream
GIT_SHELL=$(git --exec-path)/git-shell
[ -x "$GIT_SHELL" ] || GIT_SHELL=$(command -v git-shell)
# \$SSH_ORIGINAL_COMMAND is for sshd to expand, not the shell.
# shellcheck disable=SC2016
for key in client_key gateway_key; do
  printf 'command="%s -c \\"$SSH_ORIGINAL_COMMAND\\"",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty %s\n' \
    "$GIT_SHELL" "$(cut -d' ' -f1,2 "$SSHD/$key.pub")"
done >"$SSHD/authorized_keys"
SSH_USER=$(id -un)
SSHD_PORT=$(free_port)
cat >"$SSHD/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD/host_key
PidFile $SSHD/sshd.pid
AuthorizedKeysFile $SSHD/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AcceptEnv GIT_PROTOCOL
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel INFO
EOF
printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$SSHD/host_key.pub")" >"$SSHD/known_hosts"
# sshd's privilege separation needs this folder (packages create it at boot only).
mkdir -p /run/sshd
SSHD_BIN=/usr/sbin/sshd
[ -x "$SSHD_BIN" ] || SSHD_BIN=$(command -v sshd)
setsid "$SSHD_BIN" -D -e -f "$SSHD/sshd_config" </dev/null >"$SSHD/sshd.log" 2>&1 &
pids+=("$!")
disown "$!"

# --- 3. The gateway: SSH front door; upstream `local` (file://) and `sshup` (that sshd) -------
GW=$WORK/gateway
rm -rf "$GW"
mkdir -p "$GW"
GW_PORT=$(free_port)
GW_SSH_PORT=$(free_port)
keygen "$GW/agent_key" agent
cat >"$GW/gitgate.toml" <<EOF
[server]
http_listen = "127.0.0.1:$GW_PORT"
ssh_listen = "127.0.0.1:$GW_SSH_PORT"
state_dir = "state"

[[upstream]]
name = "local"
url = "file://$ROOT"

[[upstream]]
name = "sshup"
url = "ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$ROOT"
ssh_key_file = "$SSHD/gateway_key"
known_hosts = "$SSHD/known_hosts"

[[ssh_key]]
name = "bench"
public_key = "$(cat "$GW/agent_key.pub")"
groups = ["agents"]
EOF
(cd "$GW" && HOME=$GW GITGATE_LOG=${BENCH_LOG:-info} exec setsid "$GITGATE_BIN" \
  serve --config "$GW/gitgate.toml" </dev/null >"$GW/gitgate.log" 2>&1) &
GW_PID=$!
pids+=("$GW_PID")
disown "$GW_PID"

ssh_banner() ( # port: true when an SSH server answers there
  exec 2>/dev/null
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  line=
  IFS= read -r -t 5 line <&3 || true
  [[ $line == SSH-2.0-* ]]
)
for _ in $(seq 200); do ssh_banner "$SSHD_PORT" && break; sleep 0.05; done
ssh_banner "$SSHD_PORT" || { cat "$SSHD/sshd.log" >&2; echo "sshd did not start" >&2; exit 1; }
for _ in $(seq 600); do ssh_banner "$GW_SSH_PORT" && break; sleep 0.05; done
ssh_banner "$GW_SSH_PORT" || { cat "$GW/gitgate.log" >&2; echo "gitgate did not start" >&2; exit 1; }
printf '[127.0.0.1]:%s %s\n' "$GW_SSH_PORT" "$(ssh-keygen -y -f "$GW/ssh_host_ed25519_key")" \
  >"$GW/known_hosts"

# The OpenSSH client as tests/harness/ssh.rs runs it: one identity, no agent, no user config,
# the host key pinned. git sees `ssh` and sends GIT_PROTOCOL (protocol v2) with SendEnv.
ssh_command() { # key known_hosts
  echo "ssh -F /dev/null -i $1 -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes" \
    "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=$2"
}
side_url() {
  case $1 in
    direct) echo "ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$REPO" ;;
    gw-file) echo "ssh://git@127.0.0.1:$GW_SSH_PORT/local/bench.git" ;;
    gw-ssh) echo "ssh://git@127.0.0.1:$GW_SSH_PORT/sshup/bench.git" ;;
    *) echo "unknown side $1" >&2; exit 1 ;;
  esac
}
side_ssh() {
  if [ "$1" = direct ]; then ssh_command "$SSHD/client_key" "$SSHD/known_hosts"
  else ssh_command "$GW/agent_key" "$GW/known_hosts"; fi
}

# --- 4. Interleaved clones --------------------------------------------------------------------
mkdir -p "$WORK/clones"
HEAD_WANTED=$(git -C "$REPO" rev-parse main)
reset_peak() { echo 5 >"/proc/$GW_PID/clear_refs" 2>/dev/null || true; }
peak_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0; }
clone_seconds() { # side -> seconds on stdout
  local dest=$WORK/clones/c start end
  rm -rf "$dest"
  start=$(date +%s%N)
  GIT_SSH_COMMAND=$(side_ssh "$1") git clone -q --no-checkout "$(side_url "$1")" "$dest" >&2 \
    || { echo "clone ($1) failed; gateway log: $GW/gitgate.log" >&2; exit 1; }
  end=$(date +%s%N)
  [ "$(git -C "$dest" rev-parse HEAD)" = "$HEAD_WANTED" ] \
    || { echo "wrong HEAD after cloning ($1)" >&2; exit 1; }
  rm -rf "$dest"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", (e - s) / 1e9 }'
}
declare -A secs peaks growth
for side in "${SIDES[@]}"; do
  secs[$side]=""
  peaks[$side]=0
  growth[$side]=0
  clone_seconds "$side" >/dev/null # warm up: page cache, the gateway's upstream connections
done
BASE_KB=$(peak_kb)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
n=${#SIDES[@]}
for ((i = 1; i <= RUNS; i++)); do
  line="run $i:"
  for ((j = 0; j < n; j++)); do
    side=${SIDES[$(((i - 1 + j) % n))]} # rotate the order
    if [ "$side" != direct ]; then reset_peak; before=$(rss_kb); fi
    t=$(clone_seconds "$side")
    if [ "$side" != direct ]; then
      kb=$(peak_kb)
      if ((kb > ${peaks[$side]})); then peaks[$side]=$kb; fi
      if ((kb - before > ${growth[$side]})); then growth[$side]=$((kb - before)); fi
    fi
    secs[$side]+=" $t"
    line+=" $side ${t}s"
  done
  echo "$line" >&2
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# shellcheck disable=SC2086 # word splitting of the space-separated times is intended
MD=$(median ${secs[direct]})
echo "date:                 $(date -u '+%Y-%m-%d %H:%M UTC'), load $LOAD_START -> $LOAD_END"
echo "runs each:            $RUNS (interleaved, order rotating)"
awk -v b="$PACK_BYTES" 'BEGIN { printf "pack size:            %.1f MiB\n", b / 1048576 }'
echo "gateway RSS:          $(awk -v k="$BASE_KB" 'BEGIN { printf "%.1f MiB", k / 1024 }') VmHWM after the warm-up clones;" \
  "$(awk -v k="$(rss_kb)" 'BEGIN { printf "%.1f MiB", k / 1024 }') VmRSS at the end"
for side in "${SIDES[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${secs[$side]})
  awk -v s="$side" -v m="$m" -v d="$MD" -v b="$PACK_BYTES" -v k="${peaks[$side]}" -v g="${growth[$side]}" 'BEGIN {
    mib = b / 1048576
    if (s == "direct") { printf "%-8s median %7.3f s (%5.1f MiB/s)\n", s, m, mib / m; exit }
    printf "%-8s median %7.3f s (%5.1f MiB/s)   ratio %.3f (direct time / gateway time)   peak RSS %.1f MiB (VmHWM, +%.1f MiB over VmRSS before the clone)\n",
      s, m, mib / m, d / m, k / 1024, g / 1024 }'
done
