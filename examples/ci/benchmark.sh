#!/usr/bin/env bash
# A CI benchmark job with bigganctl: throughput and a small-N evaluation, each with gates,
# compared against the baseline committed next to this script, with a Markdown summary.
# Explained in docs/ci.md; the GitHub Actions workflow is benchmark.yml next to it.
#
#   examples/ci/benchmark.sh                      # judge this build against baseline/
#   UPDATE_BASELINE=1 examples/ci/benchmark.sh    # measure and write baseline/ (then commit it)
#
# Exit status: 0 all gates passed and nothing regressed; 3 a gate was missed or a metric
# regressed (every step still runs, so the summary is complete); anything else: the step's
# own failure (1 runtime, 2 usage or a protocol that differs from the baseline's).
#
# Settings (environment variables, defaults after :=):
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BIGGANCTL:=bigganctl}"                # the command (e.g. "python -m bigganctl")
: "${MODEL:=biggan-deep-128}"
: "${WEIGHTS:=}"                           # empty: the cached/pulled weights; "random": smoke test
: "${REF:=imagenet-128}"                   # a registered reference or a statistics file
: "${INCEPTION_WEIGHTS:=}"                 # empty: the cached/pulled extractor
: "${DEVICE:=auto}"
: "${N:=1000}"                             # samples of the evaluation (small N: a trend, not FID-50k)
: "${BENCH_N:=64}"                         # images timed by bench
: "${BENCH_FEATURES:=1}"                   # 0: time the generator only
: "${MAX_FID:=}"                           # absolute gates (empty: none)
: "${MIN_IS:=}"
: "${MIN_IMAGES_PER_S:=}"
: "${SWEEP_GRID:=}"                        # e.g. "0.5,1.0": also a small sweep (its plot is uploaded)
: "${EVAL_TOL:=}"                          # extra `compare --tol` values, e.g. "fid=2%"
: "${BENCH_TOL:=}"                         # e.g. "images_per_s=-20%"
: "${BASELINE_DIR:=$HERE/baseline}"
: "${OUT:=bigganctl-benchmark}"            # JSON, summary (uploaded as artifacts)
: "${SUMMARY:=${GITHUB_STEP_SUMMARY:-$OUT/summary.md}}"
: "${UPDATE_BASELINE:=0}"

read -r -a BG <<< "$BIGGANCTL"
mkdir -p "$OUT"
status=0

# Run one step; a missed gate or a regression (3) is remembered and the job goes on,
# anything else ends it with that step's exit status.
step() {
    local name=$1; shift
    echo "::group::$name" >&2
    "$@"
    local rc=$?
    echo "::endgroup::" >&2
    if [ "$rc" -eq 3 ]; then
        echo "$name: gate missed or regression (exit 3)" >&2
        status=3
    elif [ "$rc" -ne 0 ]; then
        echo "$name: failed (exit $rc)" >&2
        exit "$rc"
    fi
}

# Run a command with its stdout into a file: to_file FILE CMD...
to_file() { local f=$1; shift; "$@" > "$f"; }

model_args=(--model "$MODEL" --device "$DEVICE")
[ -n "$WEIGHTS" ] && model_args+=(--weights "$WEIGHTS")
inception_args=()
[ -n "$INCEPTION_WEIGHTS" ] && inception_args+=(--inception-weights "$INCEPTION_WEIGHTS")

# 1. Fill the cache once: with BIGGANCTL_HOME restored from the CI cache these are checks, not downloads.
[ -z "$WEIGHTS" ] && [ ! -d "$MODEL" ] && step "pull model" "${BG[@]}" models pull "$MODEL" --quiet
[ -z "$INCEPTION_WEIGHTS" ] && step "pull inception" "${BG[@]}" models pull inception --quiet
[ -f "$REF" ] || step "pull reference" "${BG[@]}" stats pull "$REF" --quiet

# 2. Throughput, with its floor.
bench_args=(--n "$BENCH_N")
[ "$BENCH_FEATURES" = 0 ] && bench_args+=(--no-features)
[ -n "$MIN_IMAGES_PER_S" ] && bench_args+=(--min-images-per-s "$MIN_IMAGES_PER_S")
step "bench" to_file "$OUT/bench.json" \
    "${BG[@]}" bench "${model_args[@]}" "${bench_args[@]}" --json --quiet --summary "$SUMMARY"

# 3. A small-N evaluation, with its gates.
eval_args=(--n "$N" --ref "$REF" --seed 0)
[ -n "$MAX_FID" ] && eval_args+=(--max-fid "$MAX_FID")
[ -n "$MIN_IS" ] && eval_args+=(--min-is "$MIN_IS")
step "eval" to_file "$OUT/eval.json" \
    "${BG[@]}" eval all "${model_args[@]}" "${inception_args[@]}" "${eval_args[@]}" --json --quiet \
    --summary "$SUMMARY"

# 3b. Optionally the truncation trade-off at the same N: sweep.csv/json and the sweep.png plot.
if [ -n "$SWEEP_GRID" ]; then
    step "sweep" "${BG[@]}" sweep "${model_args[@]}" "${inception_args[@]}" --trunc "$SWEEP_GRID" --n "$N" \
        --ref "$REF" --metrics fid,is --out "$OUT/sweep" --overwrite --quiet --summary "$SUMMARY"
fi

if [ "$UPDATE_BASELINE" = 1 ]; then
    mkdir -p "$BASELINE_DIR"
    cp "$OUT/bench.json" "$OUT/eval.json" "$BASELINE_DIR/"
    echo "baseline written to $BASELINE_DIR (commit it)" >&2
    exit "$status"
fi

# 4. Against the committed baseline. The evaluation must have the baseline's protocol
#    (exit 2 otherwise); throughput is compared only on the baseline's machine.
tols() { local t; for t in ${1//,/ }; do printf -- '--tol\n%s\n' "$t"; done; }
mapfile -t eval_tols < <(tols "$EVAL_TOL")
step "compare eval" "${BG[@]}" compare "$BASELINE_DIR/eval.json" "$OUT/eval.json" "${eval_tols[@]}" \
    --summary "$SUMMARY"

mapfile -t bench_tols < <(tols "$BENCH_TOL")
"${BG[@]}" compare "$BASELINE_DIR/bench.json" "$OUT/bench.json" "${bench_tols[@]}" --summary "$SUMMARY" \
    2> "$OUT/compare-bench.err"
rc=$?
cat "$OUT/compare-bench.err" >&2
if [ "$rc" -eq 2 ] && grep -q "protocols differ" "$OUT/compare-bench.err"; then
    printf '### bigganctl compare: bench\n\nThroughput not compared: %s\n\n' \
        "$(head -n 1 "$OUT/compare-bench.err" | sed 's/^error: //')" >> "$SUMMARY"
elif [ "$rc" -eq 3 ]; then
    status=3
elif [ "$rc" -ne 0 ]; then
    exit "$rc"
fi

exit "$status"
