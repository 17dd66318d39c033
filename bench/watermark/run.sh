#!/bin/sh
# The watermark on the default model (Gemma 3 270M): 200 prompts, each generated plain and
# watermarked (64 tokens, gamma 0.25, delta 2, `modelspec run`'s sampling), then detection
# and the log-prob shift. CPU heavy: it runs nice'd, split over PARTS processes that share
# the prompts, and takes about an hour on a busy 2-core machine.
#   sh bench/watermark/run.sh [OUTDIR] [PARTS]
set -eu
out=${1:-target/watermark-bench}
parts=${2:-3}
n=200
mkdir -p "$out"
cargo build -p ms-engine --example watermark_quality
bin=target/debug/examples/watermark_quality
i=0
while [ "$i" -lt "$parts" ]; do
    from=$((n * i / parts))
    to=$((n * (i + 1) / parts))
    nice "$bin" --from "$from" --n "$to" --out "$out/part$i.jsonl" >/dev/null 2>"$out/part$i.log" &
    i=$((i + 1))
done
wait
python3 "$(dirname "$0")/summarize.py" "$out"/part*.jsonl
