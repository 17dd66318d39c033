#!/usr/bin/env bash
# Benchmark: `modelspec validate` (single-threaded; it has no parallel mode) against the
# upstream approach (Python PyYAML + jsonschema Draft202012Validator) on the same 10,000 files,
# made by replicating examples/ (references between the copies resolve inside each copy).
#
#   bench/validate/run.sh [FILES]          default FILES=10000
#   MODELSPEC_BIN=path/to/modelspec bench/validate/run.sh   skip the release build
#   PY_RUNS=1 bench/validate/run.sh        fewer Python repetitions (each takes minutes)
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

# Both tools: best of 3 runs, wall-clock and CPU (user+sys) time. On a busy machine the CPU
# figures are the fairer comparison; Python's are taken inside the interpreter, so its start-up
# is not counted, while modelspec's include process start and schema compilation.
TIMEFORMAT='%R %U %S'
best() { awk -v t="$1" -v b="$2" 'BEGIN { if (b == "" || t < b) b = t; print b }'; }
ms_wall=""; ms_cpu=""
for _ in 1 2 3; do
  { time "$MODELSPEC_BIN" validate --no-config "$corpus" > "$work/modelspec.out"; } 2> "$work/time.txt"
  read -r wall user sys < "$work/time.txt"
  ms_wall=$(best "$wall" "$ms_wall")
  ms_cpu=$(best "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$ms_cpu")
done
tail -n 1 "$work/modelspec.out"

py_wall=""; py_cpu=""
for _ in $(seq "${PY_RUNS:-3}"); do
  read -r files wall cpu findings < <("$venv/bin/python" "$here/upstream.py" "$root/schema" "$work/files.txt")
  py_wall=$(best "$wall" "$py_wall")
  py_cpu=$(best "$cpu" "$py_cpu")
done
echo "python upstream approach: $files files, $findings findings"

awk -v n="$n" -v mw="$ms_wall" -v mc="$ms_cpu" -v pw="$py_wall" -v pc="$py_cpu" 'BEGIN {
  printf "\n%-32s %7s %9s %12s %9s %12s\n", "", "files", "wall s", "files/s", "cpu s", "files/cpu-s"
  printf "%-32s %7d %9.3f %12.0f %9.3f %12.0f\n", "modelspec validate (1 thread)", n, mw, n / mw, mc, n / mc
  printf "%-32s %7d %9.3f %12.0f %9.3f %12.0f\n", "PyYAML + jsonschema 2020-12", n, pw, n / pw, pc, n / pc
  printf "speed-up: %.1fx wall-clock, %.1fx CPU time (target >= 20x)\n", pw / mw, pc / mc
}'
