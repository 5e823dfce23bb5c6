#!/usr/bin/env bash
# Clone throughput, straight from an HTTP upstream (nginx + fcgiwrap + git http-backend, basic
# auth) versus through gitgate in front of that same upstream; runs interleaved.
#
# Usage: benches/clone_bench.sh [RUNS]          (default 5 runs of each)
# Environment:
#   BENCH_SIZE_MIB   approximate packed size of the repository (default 100)
#   BENCH_COMMITS    number of commits (default 300)
#   BENCH_FILES      files touched per commit (default 8), out of a pool of 2000 paths
#   BENCH_DIR        reuse this folder (the repository is generated once and kept there)
#   BENCH_KEEP=1     keep the temporary folder
#   GITGATE_BIN      the gateway binary (default: target/release/gitgate, built here)
#
# Prints the median clone time of each side, the throughput ratio (gateway throughput / direct
# throughput = direct time / gateway time; target >= 0.95) and the gateway's peak RSS (VmHWM).
set -euo pipefail

RUNS=${1:-${BENCH_RUNS:-5}}
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
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gitgate-bench.XXXXXX")
  KEEP=${BENCH_KEEP:-0}
fi
WORK=$(cd "$WORK" && pwd)

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    # Each daemon leads its own process group (setsid): take its children (CGI workers) too.
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

# --- 1. The repository: random-ish text in many files, a few hundred commits -----------------
ROOT=$WORK/root
REPO=$ROOT/bench.git
if [ ! -f "$REPO/bench-done" ]; then
  rm -rf "$REPO"
  git init -q --bare --initial-branch=main "$REPO"
  git -C "$REPO" config http.receivepack true
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

# --- 2. The HTTP upstream: nginx + fcgiwrap + git http-backend with basic auth ---------------
NGX=$WORK/nginx
rm -rf "$NGX"
mkdir -p "$NGX"
UP_USER=bench-user
UP_PW=bench-pw-$RANDOM$RANDOM$RANDOM
printf '%s:{PLAIN}%s\n' "$UP_USER" "$UP_PW" >"$NGX/htpasswd"
setsid fcgiwrap -c 4 -s "unix:$NGX/fcgi.sock" </dev/null >"$NGX/fcgiwrap.log" 2>&1 &
pids+=("$!")
disown "$!"
for _ in $(seq 100); do [ -S "$NGX/fcgi.sock" ] && break; sleep 0.05; done
NGX_PORT=$(free_port)
BACKEND=$(git --exec-path)/git-http-backend
cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
user root;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $NGX/body;
  fastcgi_temp_path $NGX/fastcgi;
  proxy_temp_path $NGX/proxy;
  scgi_temp_path $NGX/scgi;
  uwsgi_temp_path $NGX/uwsgi;
  server {
    listen 127.0.0.1:$NGX_PORT;
    client_max_body_size 0;
    location / {
      auth_basic "upstream";
      auth_basic_user_file $NGX/htpasswd;
      fastcgi_pass unix:$NGX/fcgi.sock;
      fastcgi_read_timeout 600s;
      fastcgi_param SCRIPT_FILENAME $BACKEND;
      fastcgi_param GIT_PROJECT_ROOT $ROOT;
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param PATH_INFO \$uri;
      fastcgi_param QUERY_STRING \$query_string;
      fastcgi_param REQUEST_METHOD \$request_method;
      fastcgi_param CONTENT_TYPE \$content_type;
      fastcgi_param CONTENT_LENGTH \$content_length;
      fastcgi_param REMOTE_USER \$remote_user;
      fastcgi_param REMOTE_ADDR \$remote_addr;
      fastcgi_param GIT_PROTOCOL \$http_git_protocol if_not_empty;
    }
  }
}
EOF
setsid nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null >"$NGX/nginx.log" 2>&1 &
pids+=("$!")
disown "$!"

# --- 3. The gateway in front of it ------------------------------------------------------------
GW=$WORK/gateway
rm -rf "$GW"
mkdir -p "$GW"
GW_PORT=$(free_port)
TOKEN=gg_bench_$RANDOM$RANDOM$RANDOM$RANDOM
TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
cat >"$GW/gitgate.toml" <<EOF
[server]
http_listen = "127.0.0.1:$GW_PORT"
state_dir = "state"

[[upstream]]
name = "up"
url = "http://127.0.0.1:$NGX_PORT/"
username = "$UP_USER"
password_env = "UPSTREAM_PW"

[[token]]
name = "bench"
sha256 = "$TOKEN_SHA"
groups = ["agents"]
EOF
(cd "$GW" && UPSTREAM_PW=$UP_PW exec setsid "$GITGATE_BIN" serve --config "$GW/gitgate.toml" \
  </dev/null >"$GW/gitgate.log" 2>&1) &
GW_PID=$!
pids+=("$GW_PID")
disown "$GW_PID"

healthy() ( # port path: true when GET answers 200 (or 401: nginx is up, wants credentials)
  # A subshell: its exec redirections stay in it.
  exec 2>/dev/null
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
  line=
  IFS= read -r -t 5 line <&3 || true
  [[ $line == *" 200 "* || $line == *" 401 "* ]]
)
for _ in $(seq 200); do healthy "$NGX_PORT" / && break; sleep 0.05; done
healthy "$NGX_PORT" / || { cat "$NGX"/*.log >&2; echo "nginx did not start" >&2; exit 1; }
for _ in $(seq 600); do healthy "$GW_PORT" /healthz && break; sleep 0.05; done
healthy "$GW_PORT" /healthz || { cat "$GW/gitgate.log" >&2; echo "gitgate did not start" >&2; exit 1; }

DIRECT_URL=http://$UP_USER:$UP_PW@127.0.0.1:$NGX_PORT/bench.git
GATEWAY_URL=http://agent:$TOKEN@127.0.0.1:$GW_PORT/up/bench.git

# --- 4. Interleaved clones --------------------------------------------------------------------
mkdir -p "$WORK/clones"
clone_seconds() { # url -> seconds on stdout
  local dest=$WORK/clones/c
  rm -rf "$dest"
  local start end
  start=$(date +%s%N)
  git clone -q --no-checkout "$1" "$dest" >&2
  end=$(date +%s%N)
  [ "$(git -C "$dest" rev-parse HEAD)" = "$(git -C "$REPO" rev-parse main)" ] \
    || { echo "wrong HEAD after cloning $1" >&2; exit 1; }
  rm -rf "$dest"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", (e - s) / 1e9 }'
}
direct=()
gateway=()
clone_seconds "$DIRECT_URL" >/dev/null # warm the page cache
for ((i = 1; i <= RUNS; i++)); do
  if ((i % 2)); then
    d=$(clone_seconds "$DIRECT_URL"); g=$(clone_seconds "$GATEWAY_URL")
  else
    g=$(clone_seconds "$GATEWAY_URL"); d=$(clone_seconds "$DIRECT_URL")
  fi
  direct+=("$d"); gateway+=("$g")
  echo "run $i: direct ${d}s, gateway ${g}s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
MD=$(median "${direct[@]}")
MG=$(median "${gateway[@]}")
HWM=$(awk '/^VmHWM/ { print $2, $3 }' "/proc/$GW_PID/status" 2>/dev/null || echo "n/a")
# The gateway's RSS is that of its own process; git upload-pack runs in the upstream.
awk -v d="$MD" -v g="$MG" -v bytes="$PACK_BYTES" -v runs="$RUNS" -v hwm="$HWM" 'BEGIN {
  mib = bytes / 1048576
  printf "runs each:            %d (interleaved)\n", runs
  printf "pack size:            %.1f MiB\n", mib
  printf "direct median:        %.3f s (%.1f MiB/s)\n", d, mib / d
  printf "gateway median:       %.3f s (%.1f MiB/s)\n", g, mib / g
  printf "throughput ratio:     %.3f (gateway/direct throughput = direct time / gateway time)\n", d / g
  printf "gateway peak RSS:     %s (VmHWM)\n", hwm
}'
