#!/usr/bin/env python3
"""Summarize watermark_quality JSON lines (one or several files, e.g. from processes that
shared the prompts with --from/--n): detection rate, false-positive rate, z-scores and the
mean log-probability shift per token under the unwatermarked model.

    python3 bench/watermark/summarize.py watermark_quality*.jsonl [--threshold 4]
"""

import json
import statistics
import sys


def main(argv):
    threshold = 4.0
    files = []
    it = iter(argv)
    for a in it:
        if a == "--threshold":
            threshold = float(next(it))
        else:
            files.append(a)
    rows = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    rows[(r["i"], r["watermark"])] = r
    # Only prompts with both generations, so that the log-prob shift is paired.
    prompts = sorted({i for (i, _) in rows if (i, True) in rows and (i, False) in rows})
    wm = [rows[(i, True)] for i in prompts]
    plain = [rows[(i, False)] for i in prompts]

    def rate(rs):
        return sum(1 for r in rs if r["z"] >= threshold)

    def token_mean(rs):
        total = sum(r["mean_logprob"] * r["tokens"] for r in rs)
        return total / max(1, sum(r["tokens"] for r in rs))

    n = len(prompts)
    print(f"{n} prompts with both generations; threshold z >= {threshold}")
    if n == 0:
        return
    print(
        f"watermarked: detected {rate(wm)}/{n} ({100 * rate(wm) / n:.1f}%), "
        f"median z {statistics.median(r['z'] for r in wm):.2f}, "
        f"min z {min(r['z'] for r in wm):.2f}, "
        f"mean tokens {statistics.mean(r['tokens'] for r in wm):.1f}, "
        f"mean scored {statistics.mean(r['scored'] for r in wm):.1f}"
    )
    print(
        f"plain: false positives {rate(plain)}/{n} ({100 * rate(plain) / n:.1f}%), "
        f"median z {statistics.median(r['z'] for r in plain):.2f}, "
        f"max z {max(r['z'] for r in plain):.2f}"
    )
    mw, mp = token_mean(wm), token_mean(plain)
    print(
        f"mean log-prob per token under the unwatermarked model: plain {mp:.4f}, "
        f"watermarked {mw:.4f}, shift {mw - mp:+.4f} nats "
        f"(perplexity x{2.718281828459045 ** (mp - mw):.3f})"
    )
    for lo in (2.0, 3.0, 5.0):
        print(
            f"  at z >= {lo}: detected {sum(1 for r in wm if r['z'] >= lo)}/{n}, "
            f"false positives {sum(1 for r in plain if r['z'] >= lo)}/{n}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
