#!/usr/bin/env python3
"""Dequantizes every tensor of the given GGUF files with the `gguf` Python package (llama.cpp's
gguf-py, numpy) and prints, as JSON, the sha256 of each tensor's float32 little-endian values.

The Rust test `dequant_gguf_py.rs` compares our dequantization with these digests, so CI needs no
Python; rerun this script to regenerate `gguf_py_dequant.json` when the models change:

    python3 -m venv /tmp/ggufpy && /tmp/ggufpy/bin/pip install numpy gguf
    /tmp/ggufpy/bin/python crates/quant/tests/py/gguf_py_digests.py \
        ../shared/oracle/models/*.gguf ~/.cache/modelspec/blobs/sha256/a5fd3b62...6818 \
        > crates/quant/tests/py/gguf_py_dequant.json
"""

import hashlib
import importlib.metadata
import json
import os
import sys

import gguf
import numpy as np


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(paths):
    out = {"gguf_version": importlib.metadata.version("gguf"), "files": {}}
    for path in paths:
        reader = gguf.GGUFReader(path)
        tensors = {}
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
            tensors[t.name] = {
                "type": t.tensor_type.name,
                "values": int(values.size),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        # Keyed by content, so the same file is found wherever it lives.
        out["files"][file_sha256(path)] = {"name": os.path.basename(path), "tensors": tensors}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
