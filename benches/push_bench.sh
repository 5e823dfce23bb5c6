#!/usr/bin/env bash
# Push throughput, straight to an HTTP upstream (nginx + fcgiwrap + git http-backend, basic auth)
# versus through gitgate in front of that same upstream; runs interleaved. Three cases:
#   small   a one-line commit pushed to main of a ~100 MiB repository, once the gateway's mirror
#           of it is warm (the cold first push through the gateway is timed apart);
#   big     a commit adding one 50 MiB file (incompressible) on a new branch of that repository;
#   deltas  a ~100 MiB pack with many objects and real deltas (1200 revisions of 200 text files of
#           random hex) pushed into an empty repository;
#   own     (not run by default) like small, but each side pushes to its own copy of the
#           repository, so only the gateway moves the one behind it: its mirror stays warm.
#   history (not run by default) a real project's history pushed into an empty repository:
#           BENCH_HISTORY_REPO at BENCH_HISTORY_REV. The findings the gateway's scanner makes
#           in that history (test keys and the like) are accepted through a baseline written
#           by `gitgate scan --git`, as a team importing such a repository would: the scanning
#           work is the same, the push goes through.
#
# Usage: benches/push_bench.sh [RUNS]          (default 5 runs of each side, per case)
# Environment:
#   BENCH_CASES      the cases to run (default "small big deltas")
#   BENCH_SIZE_MIB   packed size of the repository of `small` and `big` (default 100)
#   BENCH_COMMITS    its commits (default 300)
#   BENCH_FILES      files touched per commit (default 8), out of a pool of 2000 paths
#   BENCH_BIG_MIB    size of the file of `big` (default 50)
#   BENCH_DELTA      shape of the `deltas` history: "FILES KIB COMMITS FILES_PER_COMMIT CHANGE_KIB"
#                    (default "200 64 1200 8 15": about 100 MiB packed, 21600 objects)
#   BENCH_HISTORY_REPO  the git directory whose history `history` pushes
#   BENCH_HISTORY_REV   the revision of it pushed (default HEAD), as `main`
#   BENCH_DIR        reuse this folder (the repositories are generated once and kept there)
#   BENCH_KEEP=1     keep the temporary folder
#   BENCH_NGINX_LOG  an nginx access_log argument (e.g. "$PWD/access.log timed": method, path,
#                    status, request bytes, seconds per request); default off
#   BENCH_TRACE      a folder: each timed push writes git's HTTP trace (GIT_TRACE_CURL, without
#                    data, timestamped) to <case>-<side>-<run>.log there
#   BENCH_LOG        GITGATE_LOG for the gateway (default info); its log is $WORK/gateway/gitgate.log
#   BENCH_SCAN=off   turn the gateway's secret scanning off (default: the gateway's default, on)
#   BENCH_FILTER=off do not set uploadpack.allowFilter on the upstream repositories (plain
#                    http-backend's default). By default it is set, as hosted forges allow partial
#                    clones: without it the gateway's blobless mirror silently fetches every blob.
#   GITGATE_BIN      the gateway binary (default: target/release/gitgate, built here)
#
# Prints, per case, the median push time of each side, the ratio gateway/direct (targets: <= 1.2)
# and the gateway's peak RSS during the case (VmHWM, reset before each case; target < 100 MiB).
# The RSS is the gateway process's own: the git processes it runs (mirror fetch, ancestry and
# path queries) are not counted.
set -euo pipefail

RUNS=${1:-${BENCH_RUNS:-5}}
CASES=${BENCH_CASES:-small big deltas}
SIZE_MIB=${BENCH_SIZE_MIB:-100}
COMMITS=${BENCH_COMMITS:-300}
FILES=${BENCH_FILES:-8}
BIG_MIB=${BENCH_BIG_MIB:-50}
read -r D_FILES D_KIB D_COMMITS D_PER_COMMIT D_CHANGE_KIB <<<"${BENCH_DELTA:-200 64 1200 8 15}"
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
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gitgate-push-bench.XXXXXX")
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
  # The upstream and the clients change with every run: only the generated repositories stay.
  rm -rf "$WORK/root" "$WORK/client"
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# git isolated from the machine's configuration, as in the tests.
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME"
printf '[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n' >"$HOME/.gitconfig"

# --- 1. The repositories, generated once ---------------------------------------------------------
GEN=$WORK/gen
mkdir -p "$GEN"
# `small` and `big`: the repository of benches/clone_bench.sh (random base64 text in many files).
if [ ! -f "$GEN/bench.git/bench-done" ]; then
  rm -rf "$GEN/bench.git"
  git init -q --bare --initial-branch=main "$GEN/bench.git"
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
  } | git -C "$GEN/bench.git" fast-import --quiet
  git -C "$GEN/bench.git" repack -q -a -d -b --window=0
  touch "$GEN/bench.git/bench-done"
fi
# `deltas`: D_FILES text files of D_KIB KiB; each of D_COMMITS commits replaces a block of
# D_CHANGE_KIB KiB in D_PER_COMMIT of them, so every new version is a good delta of the previous.
# The text is random hex, in lines of 76 characters: base64 would trip the gateway's secret scanner
# (e.g. `cio` followed by 32 letters and digits reads as a crates.io token).
DELTA_KEY="hex-$D_FILES-$D_KIB-$D_COMMITS-$D_PER_COMMIT-$D_CHANGE_KIB"
if [ ! -f "$GEN/deltas.git/bench-done-$DELTA_KEY" ]; then
  rm -rf "$GEN/deltas.git"
  git init -q --bare --initial-branch=main "$GEN/deltas.git"
  echo "generating $D_COMMITS revisions of $D_FILES files of $D_KIB KiB..." >&2
  python3 - "$D_FILES" "$D_KIB" "$D_COMMITS" "$D_PER_COMMIT" "$D_CHANGE_KIB" <<'EOF' |
import random, sys
files, kib, commits, per_commit, change_kib = (int(a) for a in sys.argv[1:6])
rnd = random.Random(1)
def lines(n):
    b = rnd.randbytes(n * 38).hex().encode()
    return [b[i * 76:(i + 1) * 76] + b"\n" for i in range(n)]
per_file = max(1, kib * 1024 // 77)
change = min(per_file, max(1, change_kib * 1024 // 77))
paths = [b"src/mod%02d/file%04d.txt" % (i % 20, i) for i in range(files)]
content = [lines(per_file) for _ in range(files)]
out = sys.stdout.buffer
def blob(i):
    data = b"".join(content[i])
    out.write(b"M 100644 inline %s\ndata %d\n" % (paths[i], len(data)) + data + b"\n")
for c in range(1, commits + 1):
    msg = b"revision %d\n" % c
    out.write(b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n"
              b"data %d\n%s" % (c, 1700000000 + c * 60, len(msg), msg))
    if c == 1:
        for i in range(files):
            blob(i)
        continue
    out.write(b"from :%d\n" % (c - 1))
    for i in rnd.sample(range(files), min(per_commit, files)):
        start = rnd.randrange(0, per_file - change + 1)
        content[i][start:start + change] = lines(change)
        blob(i)
EOF
    git -C "$GEN/deltas.git" fast-import --quiet
  # fast-import deltas against the previous blob written, not the previous version of a path:
  # recompute deltas as a server's repack would.
  git -C "$GEN/deltas.git" repack -q -a -d -f --window=10 --depth=50
  touch "$GEN/deltas.git/bench-done-$DELTA_KEY"
fi
# `history`: one revision of a real repository, alone in a repository of its own, packed (its
# deltas are the source's), with a baseline of what the scanner finds in it.
if [[ " $CASES " == *" history "* ]]; then
  [ -n "${BENCH_HISTORY_REPO:-}" ] || { echo "the history case needs BENCH_HISTORY_REPO" >&2; exit 1; }
  HISTORY_TIP=$(git -C "$BENCH_HISTORY_REPO" rev-parse --verify "${BENCH_HISTORY_REV:-HEAD}^{commit}")
  if [ ! -f "$GEN/history.git/bench-done-$HISTORY_TIP" ]; then
    rm -rf "$GEN/history.git"
    git init -q --bare --initial-branch=main "$GEN/history.git"
    git -C "$BENCH_HISTORY_REPO" push -q "$GEN/history.git" "$HISTORY_TIP:refs/heads/main"
    git -C "$GEN/history.git" repack -q -a -d
    echo "scanning the history for the baseline..." >&2
    # Exit 1: findings (the baseline's point); anything else is a failure.
    rc=0
    "$GITGATE_BIN" scan --git "$GEN/history.git" --format json >"$GEN/history-baseline.jsonl" || rc=$?
    if [ "$rc" -gt 1 ]; then echo "gitgate scan failed (exit $rc)" >&2; exit 1; fi
    touch "$GEN/history.git/bench-done-$HISTORY_TIP"
  fi
  HISTORY_PACK=$(du -cb "$GEN/history.git"/objects/pack/*.pack | tail -1 | cut -f1)
  HISTORY_OBJECTS=$(git -C "$GEN/history.git" count-objects -v | awk '/^in-pack/ { print $2 }')
  echo "history (history): $(git -C "$GEN/history.git" rev-list --count main) commits," \
    "$HISTORY_OBJECTS objects, pack $((HISTORY_PACK / 1024 / 1024)) MiB," \
    "$(wc -l <"$GEN/history-baseline.jsonl") findings in the baseline" >&2
fi
pack_bytes() { du -cb "$1"/objects/pack/*.pack | tail -1 | cut -f1; }
BENCH_PACK=$(pack_bytes "$GEN/bench.git")
DELTA_PACK=$(pack_bytes "$GEN/deltas.git")
DELTA_OBJECTS=$(git -C "$GEN/deltas.git" count-objects -v | awk '/^in-pack/ { print $2 }')
echo "repository (small, big): $(git -C "$GEN/bench.git" rev-list --count main) commits," \
  "pack $((BENCH_PACK / 1024 / 1024)) MiB" >&2
echo "history (deltas): $(git -C "$GEN/deltas.git" rev-list --count main) commits," \
  "$DELTA_OBJECTS objects, pack $((DELTA_PACK / 1024 / 1024)) MiB" >&2

# The upstream's folder, fresh for every invocation: a copy of the generated repository.
ROOT=$WORK/root
rm -rf "$ROOT"
mkdir -p "$ROOT"
upstream_config() { # repository folder
  git -C "$1" config http.receivepack true
  if [ "${BENCH_FILTER:-on}" != off ]; then git -C "$1" config uploadpack.allowFilter true; fi
}
cp -a "$GEN/bench.git" "$ROOT/bench.git"
upstream_config "$ROOT/bench.git"
# `own`: one copy per side, so the gateway's repository changes only through the gateway.
if [[ " ${BENCH_CASES:-} " == *" own "* ]]; then
  for r in own-direct.git own-gateway.git; do
    cp -a "$GEN/bench.git" "$ROOT/$r"
    upstream_config "$ROOT/$r"
  done
fi
new_upstream_repo() { # name: an empty repository that accepts pushes over HTTP
  git init -q --bare --initial-branch=main "$ROOT/$1"
  upstream_config "$ROOT/$1"
}

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
  log_format timed '\$request_method \$uri \$status \$request_length \$request_time \$upstream_response_time';
  access_log ${BENCH_NGINX_LOG:-off};
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
      fastcgi_send_timeout 600s;
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
if [ "${BENCH_SCAN:-}" = off ]; then
  printf '\n[scan]\nenabled = false\n' >>"$GW/gitgate.toml"
elif [ -n "${HISTORY_TIP:-}" ]; then
  printf '\n[scan]\nbaseline = "%s"\n' "$GEN/history-baseline.jsonl" >>"$GW/gitgate.toml"
fi
(cd "$GW" && UPSTREAM_PW=$UP_PW GITGATE_LOG=${BENCH_LOG:-info} exec setsid "$GITGATE_BIN" \
  serve --config "$GW/gitgate.toml" </dev/null >"$GW/gitgate.log" 2>&1) &
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

direct_url() { echo "http://$UP_USER:$UP_PW@127.0.0.1:$NGX_PORT/$1"; }
gateway_url() { echo "http://agent:$TOKEN@127.0.0.1:$GW_PORT/up/$1"; }
url() { # side repo
  if [ "$1" = direct ]; then direct_url "$2"; else gateway_url "$2"; fi
}

# --- 4. Measuring ------------------------------------------------------------------------------
seconds_since() { awk -v s="$1" -v e="$(date +%s%N)" 'BEGIN { printf "%.3f\n", (e - s) / 1e9 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
reset_peak() { echo 5 >"/proc/$GW_PID/clear_refs" 2>/dev/null || true; }
peak() { awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$GW_PID/status" 2>/dev/null || echo "n/a"; }
# VmHWM counts file-backed pages too (the spooled pack is memory-mapped while it is read), so
# anonymous and file-backed resident memory are also sampled, every 0.1 s, for a split.
sample_rss() { # FILE: appends "RssAnon RssFile" (kB) of the gateway until killed
  while [ -r "/proc/$GW_PID/status" ]; do
    awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { print a, f }' "/proc/$GW_PID/status" >>"$1" \
      2>/dev/null || break
    sleep 0.1
  done
}
sampled_peaks() { # FILE
  awk '$1 > a { a = $1 } $2 > f { f = $2 } END { printf "anon %.1f MiB, file-backed %.1f MiB (sampled)", a / 1024, f / 1024 }' "$1"
}
results=()

# run_case NAME PREPARE PUSH CHECK: RUNS interleaved pairs; PREPARE side i (untimed) sets up
# push i of a side, PUSH side i pushes (timed), CHECK side i verifies the upstream.
run_case() {
  local name=$1 prepare=$2 push=$3 check=$4 i side start t
  local direct=() gateway=() sampler rss=$WORK/rss-$name
  reset_peak
  : >"$rss"
  sample_rss "$rss" &
  sampler=$!
  for ((i = 1; i <= RUNS; i++)); do
    local order=(direct gateway)
    if ((i % 2 == 0)); then order=(gateway direct); fi
    for side in "${order[@]}"; do
      "$prepare" "$side" "$i"
      if [ -n "${BENCH_TRACE:-}" ]; then
        mkdir -p "$BENCH_TRACE"
        export GIT_TRACE_CURL="$BENCH_TRACE/$name-$side-$i.log" GIT_TRACE_CURL_NO_DATA=1
      fi
      start=$(date +%s%N)
      "$push" "$side" "$i"
      t=$(seconds_since "$start")
      unset GIT_TRACE_CURL GIT_TRACE_CURL_NO_DATA
      "$check" "$side" "$i"
      if [ "$side" = direct ]; then direct+=("$t"); else gateway+=("$t"); fi
    done
    echo "$name run $i: direct ${direct[-1]}s, gateway ${gateway[-1]}s" >&2
  done
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local md mg
  md=$(median "${direct[@]}")
  mg=$(median "${gateway[@]}")
  results+=("$(awk -v n="$name" -v d="$md" -v g="$mg" -v hwm="$(peak)" -v mem="$(sampled_peaks "$rss")" 'BEGIN {
    printf "%-7s direct %7.3f s   gateway %7.3f s   ratio %.3f   gateway peak RSS %s (VmHWM; %s)", n, d, g, g / d, hwm, mem }')")
  echo "${results[-1]}" >&2
}

CLIENT=$WORK/client
rm -rf "$CLIENT"
mkdir -p "$CLIENT"

# small: a one-line commit on main, pushed to main.
small_prepare() {
  echo "line $2 from $1" >>"$CLIENT/small/notes.txt"
  git -C "$CLIENT/small" commit -q -a -m "one line ($1 $2)"
}
small_push() { git -C "$CLIENT/small" push -q "$(url "$1" bench.git)" HEAD:refs/heads/main; }
small_check() {
  [ "$(git -C "$ROOT/bench.git" rev-parse main)" = "$(git -C "$CLIENT/small" rev-parse HEAD)" ] \
    || { echo "small: upstream main is not the pushed commit" >&2; exit 1; }
}

# big: a commit adding a BIG_MIB file on top of main, pushed as a new branch.
big_prepare() {
  local blob tree
  blob=$(head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom | git -C "$CLIENT/small" hash-object -w --stdin)
  tree=$(
    export GIT_INDEX_FILE=$CLIENT/big.index
    git -C "$CLIENT/small" read-tree HEAD
    git -C "$CLIENT/small" update-index --add --cacheinfo "100644,$blob,big-$1-$2.bin"
    git -C "$CLIENT/small" write-tree
  )
  BIG_COMMIT=$(git -C "$CLIENT/small" commit-tree "$tree" -p HEAD -m "big file ($1 $2)")
  # Packed (as a client's object store mostly is), so that pushing does not deflate 50 MiB.
  git -C "$CLIENT/small" repack -q -d
}
big_push() { git -C "$CLIENT/small" push -q "$(url "$1" bench.git)" "$BIG_COMMIT:refs/heads/big-$1-$2"; }
big_check() {
  [ "$(git -C "$ROOT/bench.git" rev-parse "big-$1-$2")" = "$BIG_COMMIT" ] \
    || { echo "big: the branch is not the pushed commit" >&2; exit 1; }
}

# deltas: the whole history, pushed into a new empty repository.
deltas_prepare() { new_upstream_repo "deltas-$1-$2.git"; }
deltas_push() { git -C "$GEN/deltas.git" push -q "$(url "$1" "deltas-$1-$2.git")" main:refs/heads/main; }
deltas_check() {
  [ "$(git -C "$ROOT/deltas-$1-$2.git" rev-parse main)" = "$(git -C "$GEN/deltas.git" rev-parse main)" ] \
    || { echo "deltas: upstream main is not the pushed commit" >&2; exit 1; }
  rm -rf "$ROOT/deltas-$1-$2.git" # keep the disk in check; the gateway's mirror stays
}

# history: a real project's history, pushed into a new empty repository.
history_prepare() { new_upstream_repo "history-$1-$2.git"; }
history_push() { git -C "$GEN/history.git" push -q "$(url "$1" "history-$1-$2.git")" main:refs/heads/main; }
history_check() {
  [ "$(git -C "$ROOT/history-$1-$2.git" rev-parse main)" = "$HISTORY_TIP" ] \
    || { echo "history: upstream main is not the pushed commit" >&2; exit 1; }
  rm -rf "$ROOT/history-$1-$2.git"
}

# own: like small, but each side pushes to its own copy of the repository, so nobody else
# moves the one behind the gateway (its mirror stays warm: the gateway writes its own pushes
# through to it). Direct pushes go to own-direct.git, gateway pushes to own-gateway.git.
own_prepare() {
  echo "line $2" >>"$CLIENT/own-$1/notes.txt"
  git -C "$CLIENT/own-$1" commit -q -a -m "one line ($2)"
}
own_push() { git -C "$CLIENT/own-$1" push -q "$(url "$1" "own-$1.git")" HEAD:refs/heads/main; }
own_check() {
  [ "$(git -C "$ROOT/own-$1.git" rev-parse main)" = "$(git -C "$CLIENT/own-$1" rev-parse HEAD)" ] \
    || { echo "own: upstream main is not the pushed commit" >&2; exit 1; }
}
if [[ " $CASES " == *" own "* ]]; then
  for side in direct gateway; do
    git clone -q "$GEN/bench.git" "$CLIENT/own-$side"
    git -C "$CLIENT/own-$side" config gc.auto 0
    echo "notes" >"$CLIENT/own-$side/notes.txt"
    git -C "$CLIENT/own-$side" add notes.txt
    git -C "$CLIENT/own-$side" commit -q -m "notes"
    own_push "$side" 0 # warm-up (the gateway's cold mirror), untimed
    own_check "$side" 0
  done
fi

# The client of `small` and `big`: a clone of the repository (local, hard links).
git clone -q "$GEN/bench.git" "$CLIENT/small"
git -C "$CLIENT/small" config gc.auto 0
echo "notes" >"$CLIENT/small/notes.txt"
git -C "$CLIENT/small" add notes.txt
git -C "$CLIENT/small" commit -q -m "notes"
# Warm up: the page cache with a direct push, the gateway's mirror with the first push through
# it (timed: that is the cold-mirror cost, paid once per repository).
small_push direct 0
small_check direct 0
small_prepare gateway 0
start=$(date +%s%N)
small_push gateway 0
COLD=$(seconds_since "$start")
small_check gateway 0
echo "first push through the gateway (cold mirror of a $((BENCH_PACK / 1024 / 1024)) MiB repository): ${COLD}s" >&2

for case in $CASES; do
  run_case "$case" "${case}_prepare" "${case}_push" "${case}_check"
done

echo "runs each:            $RUNS (interleaved, medians)"
echo "repository (small/big): $(awk -v b="$BENCH_PACK" 'BEGIN { printf "%.1f MiB pack", b / 1048576 }'); big file $BIG_MIB MiB"
echo "history (deltas):     $(awk -v b="$DELTA_PACK" 'BEGIN { printf "%.1f MiB pack", b / 1048576 }'), $DELTA_OBJECTS objects"
if [ -n "${HISTORY_TIP:-}" ]; then
  echo "history:              $(awk -v b="$HISTORY_PACK" 'BEGIN { printf "%.1f MiB pack", b / 1048576 }'), $HISTORY_OBJECTS objects ($BENCH_HISTORY_REPO at $HISTORY_TIP)"
fi
echo "cold-mirror push:     ${COLD} s (first push through the gateway, not in the medians)"
echo "secret scanning:      ${BENCH_SCAN:-on (default)}"
echo "upstream filters:     ${BENCH_FILTER:-on} (uploadpack.allowFilter)"
printf '%s\n' "${results[@]}"
