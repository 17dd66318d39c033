"""Throughput of `modelspec serve` under N concurrent streaming chat clients.

Usage: python throughput.py BASE_URL [--clients 1,8] [--max-tokens 64] [--requests-per-client 2]

Each client sends streaming chat requests one after another (each with its own prompt and
seed, temperature 0.8, a fixed max_tokens) and counts the content chunks it receives; the
server's usage chunk gives the exact token count. Prints, per client count, generated tokens per
second over the wall time, mean time to first token and mean per-request decode rate, as the
client sees it and as the scheduler measured it (its run record, GET /v1/runs/{id}): their
difference is what HTTP, SSE and the async runtime cost per token.
Needs the `openai` package (the e2e venv: target/e2e-venv/bin/python).
"""

import argparse
import json
import threading
import time
import urllib.request

from openai import OpenAI

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "List some facts about the moon.",
    "Describe a walk in the forest in autumn.",
    "What makes a good cup of tea?",
    "Tell me about the history of the printing press.",
    "How do bees make honey?",
    "Describe the city of Paris to a child.",
]


def client_loop(base_url, model, index, requests, max_tokens, results):
    client = OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0, timeout=600)
    for r in range(requests):
        start = time.perf_counter()
        first = None
        usage = None
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": PROMPTS[(index + r) % len(PROMPTS)]}],
            max_tokens=max_tokens,
            temperature=0.8,
            seed=index * 100 + r,
            stream=True,
            stream_options={"include_usage": True},
        )
        run_id = raw.headers.get("x-modelspec-run-id")
        for chunk in raw.parse():
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
            if chunk.usage is not None:
                usage = chunk.usage
        end = time.perf_counter()
        with urllib.request.urlopen(f"{base_url}/v1/runs/{run_id}") as f:
            run = json.load(f)
        # The scheduler's own decode rate: tokens after the first over the time after it.
        internal = (run["completion_tokens"] - 1) / ((run["total_ms"] - run["ttft_ms"]) / 1e3)
        results.append((start, first or end, end, usage.completion_tokens, internal))


def run(base_url, model, clients, requests, max_tokens):
    results = []
    threads = [
        threading.Thread(target=client_loop, args=(base_url, model, i, requests, max_tokens, results))
        for i in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r[3] for r in results)
    ttft = sum(r[1] - r[0] for r in results) / len(results)
    decode = sum((r[3] - 1) / (r[2] - r[1]) for r in results if r[2] > r[1] and r[3] > 1) / len(results)
    internal = sum(r[4] for r in results) / len(results)
    print(
        f"clients {clients}: {len(results)} requests, {tokens} tokens in {wall:.2f} s = "
        f"{tokens / wall:.1f} tok/s total; mean TTFT {ttft * 1e3:.0f} ms; "
        f"mean per-request decode {decode:.2f} tok/s at the client, "
        f"{internal:.2f} tok/s in the scheduler (HTTP/SSE overhead {(1 - decode / internal) * 100:.1f}%)"
    )
    return tokens / wall


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    p.add_argument("--model", default="gemma3-270m")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--requests-per-client", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=64)
    a = p.parse_args()
    rates = {}
    for n in [int(x) for x in a.clients.split(",")]:
        rates[n] = run(a.base_url, a.model, n, a.requests_per_client, a.max_tokens)
    if len(rates) > 1:
        base = rates[min(rates)]
        for n, r in sorted(rates.items()):
            print(f"  {n} clients: {r / base:.2f}x the throughput of {min(rates)}")


if __name__ == "__main__":
    main()
