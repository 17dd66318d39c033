#!/usr/bin/env bash
# Benchmark: `modelspec validate` (single-threaded; it has no parallel mode) against the
# upstream approach (Python PyYAML + jsonschema Draft202012Validator) on the same 10,000 files,
# made by replicating examples/ (references between the copies resolve inside each copy).
#
#   bench/validate/run.sh [FILES]          default FILES=10000
#   MODELSPEC_BIN=path/to/modelspec bench/validate/run.sh   skip the release build
#
# Needs python3 with venv + pip (PyPI reachable on first run). Prints files/s and the ratio.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
want="${1:-10000}"
work="${BENCH_WORKDIR:-${TMPDIR:-/tmp}/modelspec-validate-bench}"
venv="$work/venv"

if [ -z "${MODELSPEC_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p modelspec >&2)
  MODELSPEC_BIN="$root/target/release/modelspec"
fi

mkdir -p "$work"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "jsonschema==4.*" "PyYAML==6.*"
fi

# Replicate the examples tree until there are $want spec files.
corpus="$work/corpus"
rm -rf "$corpus"
mkdir -p "$corpus"
per_copy=$(cd "$root/examples" && find . -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | wc -l)
copies=$(( (want + per_copy - 1) / per_copy ))
for i in $(seq -w 1 "$copies"); do cp -r "$root/examples" "$corpus/copy-$i"; done
find "$corpus" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort | head -n "$want" > "$work/files.txt"
# Trim the corpus to exactly $want files (drop the surplus of the last copy).
find "$corpus" -type f | sort > "$work/all.txt"
comm -23 "$work/all.txt" "$work/files.txt" | xargs -r rm -f
n=$(wc -l < "$work/files.txt")
cat "$work/files.txt" > /dev/null  # warm the page cache for both tools

# modelspec: best of 3 runs over the directory.
best_ms=""
for _ in 1 2 3; do
  t0=$(date +%s.%N)
  "$MODELSPEC_BIN" validate --no-config "$corpus" > "$work/modelspec.out"
  t1=$(date +%s.%N)
  best_ms=$(awk -v a="$t0" -v b="$t1" -v best="$best_ms" 'BEGIN { t = b - a; if (best == "" || t < best) best = t; print best }')
done
tail -n 1 "$work/modelspec.out"

# upstream approach: best of 3 (timed inside Python, so interpreter start-up is not counted).
best_py=""
for _ in 1 2 3; do
  read -r files secs findings < <("$venv/bin/python" "$here/upstream.py" "$root/schema" "$work/files.txt")
  best_py=$(awk -v t="$secs" -v best="$best_py" 'BEGIN { if (best == "" || t < best) best = t; print best }')
done
echo "python upstream approach: $files files, $findings findings"

awk -v n="$n" -v ms="$best_ms" -v py="$best_py" 'BEGIN {
  printf "\n%-34s %8d files  %8.3f s  %10.0f files/s\n", "modelspec validate (1 thread)", n, ms, n / ms
  printf "%-34s %8d files  %8.3f s  %10.0f files/s\n", "PyYAML + jsonschema 2020-12", n, py, n / py
  printf "speed-up: %.1fx (target >= 20x)\n", py / ms
}'
