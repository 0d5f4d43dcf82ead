#!/usr/bin/env bash
# One-shot GPU check (issue 20), under 5 minutes: the CUDA tests, benchmarks/sampling.py on the GPU at
# B = 1,024 and 65,536 (N = 100: action·steps/s and the ratio to the same run's matmul floor) and the time of
# one DAC4Rec update on the GPU (the default TD sampler and the full ddpm chain). Everything printed is also
# written to one file:
#
#   scripts/gpu_check.sh [FILE]     FILE defaults to $OUT/gpu_check.txt when $OUT is set, else results/gpu_check.txt
#
# Uses $PYTHON, else .venv/bin/python, else python3. Without a CUDA device it says so and exits 0.
# Exit status 1 if a test or a benchmark failed (the others still run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  version=$("$PY" -c "import torch; print('torch ' + torch.__version__)" 2>/dev/null || echo "torch not importable")
  echo "gpu_check: no CUDA device visible to $PY ($version); nothing to check. The CUDA tests skip on CPU."
  exit 0
fi

if [ $# -ge 1 ]; then FILE="$1"; elif [ -n "${OUT:-}" ]; then FILE="$OUT/gpu_check.txt"; else FILE=results/gpu_check.txt; fi
mkdir -p "$(dirname "$FILE")"
TMP=$(mktemp "$(dirname "$FILE")/.gpu_check.XXXXXX") || exit 1
trap 'rm -f "$TMP"' EXIT
status=0

step() {  # step SECONDS TITLE COMMAND...: run with a time limit, show and record its output
  local limit=$1 title=$2
  shift 2
  echo "## $title" | tee -a "$TMP"
  timeout "$limit" "$@" 2>&1 | tee -a "$TMP"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    local why="exit $rc"
    [ "$rc" -eq 124 ] && why="over its ${limit} s limit"
    echo "FAILED ($why): $*" | tee -a "$TMP"
    status=1
  fi
}

{
  echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"
} 2>&1 | tee -a "$TMP"
step 150 "CUDA tests" "$PY" -m pytest tests/test_samplers.py tests/test_policy.py tests/test_schedule.py \
  tests/test_agent_faults.py -q \
  -p no:cacheprovider -rs -k cuda
step 90 "sampling, N = 100, on the GPU" "$PY" benchmarks/sampling.py --device cuda --batch-sizes 1024 65536 \
  --steps 100 --repeats 5 --activations relu --no-reference
step 60 "one DAC4Rec update on the GPU (N = 100, B = 256, obs 91, action 27)" "$PY" benchmarks/training.py \
  --device cuda --steps 100 --repeats 5 --updates 20 --agents DAC4Rec "DAC4Rec, td_sampler=ddpm"

# the figures, atomically: the file is the previous complete one or this complete one
chmod 644 "$TMP"
sync "$TMP" 2>/dev/null || sync
mv -f "$TMP" "$FILE" && trap - EXIT
echo "gpu_check: figures written to $FILE"
exit $status
