#!/usr/bin/env python3
"""Writes pretokenizer_splits.json: random texts split by the BPE pre-tokenizer regexes with
Python's `regex` module (pip install regex), applied as llama.cpp applies a regex list (text
between matches stays a word). The pre-tokenizer unit test checks our hand-written splitters
against it. Run: python3 gen_pretokenizer_splits.py pretokenizer_splits.json
"""
import json
import random
import sys

import regex
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SMOLLM = [r"\p{N}", GPT2]
DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"]
def split(text, exprs):
    words = [text] if text else []
    for e in exprs:
        r = regex.compile(e)
        out = []
        for w in words:
            start = 0
            for m in r.finditer(w):
                if m.start() > start: out.append(w[start:m.start()])
                if m.end() > m.start(): out.append(m.group())
                start = m.end()
            if start < len(w): out.append(w[start:])
        words = out
    return words
pool = list("aAbBsStTmMdDrReEvVlL zZ'\"  \t\n\r\n.,!?;:-_()[]{}$+<=>^~|@#%&*/\\`0123456789") + \
       list("éÉñßøçü日本語テキスト中文한국어ÀΩπжЖ") + ["\u00a0", "\u3000", "\u2003", "٣", "²", "½", "Ⅻ", "…", "—", "“", "”", "«", "»", "🙂", "🚀", "👩", "\u200d", "\u0301", "€", "©", "™", "°"]
random.seed(7)
cases = []
for i in range(300):
    n = random.randint(0, 24)
    t = "".join(random.choice(pool) for _ in range(n))
    cases.append({"text": t, "gpt2": split(t, [GPT2]), "llama3": split(t, [LLAMA3]), "qwen2": split(t, [QWEN2]), "default": split(t, DEFAULT), "smollm": split(t, SMOLLM)})
for t in ["I'M 12345 ok!!\n\n  \nx", "  Hello\n\n\n world's  ", "a+b=12345, x", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～"]:
    cases.append({"text": t, "gpt2": split(t, [GPT2]), "llama3": split(t, [LLAMA3]), "qwen2": split(t, [QWEN2]), "default": split(t, DEFAULT), "smollm": split(t, SMOLLM)})
json.dump(cases, open(sys.argv[1], "w"), ensure_ascii=False, separators=(",", ":"))
print(len(cases))
