#!/usr/bin/env python3
"""The upstream validator's approach, for comparison: PyYAML safe_load + jsonschema
Draft202012Validator per file (plus its one semantic rule), over the same files.

Unlike upstream, which builds a validator for every file, this builds one per schema and
reuses it, so the baseline is as fast as that approach gets. Each document is validated
against the committed schema for its apiVersion/kind, the same work `modelspec validate` does.

usage: upstream.py SCHEMA_DIR FILE_LIST
"""
import json
import sys
import time
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator


def main() -> int:
    schema_dir = Path(sys.argv[1])
    files = Path(sys.argv[2]).read_text().split("\n")
    files = [f for f in files if f]
    validators = {}
    for key, name in [
        (("piqc.ai/v1alpha1", "ModelSpec"), "modelspec.v1alpha1.schema.json"),
        (("modelspec/v1", "ModelSpec"), "modelspec.v1.schema.json"),
        (("modelspec/v1", "ExecutionPlan"), "executionplan.v1.schema.json"),
    ]:
        validators[key] = Draft202012Validator(json.loads((schema_dir / name).read_text()))
    start = time.perf_counter()
    cpu_start = time.process_time()
    findings = 0
    for f in files:
        text = Path(f).read_text(encoding="utf-8")
        doc = json.loads(text) if f.endswith(".json") else yaml.safe_load(text)
        v = validators.get((doc.get("apiVersion"), doc.get("kind")))
        if v is None:
            findings += 1
            continue
        findings += sum(1 for _ in v.iter_errors(doc))
        model = doc.get("spec", {}).get("identity", {}).get("model", {})
        if model.get("framework") == "vllm" and "maxSequenceLengthTokens" not in doc["spec"]["runtime"].get("batch", {}):
            findings += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(f"{len(files)} {elapsed:.3f} {cpu:.3f} {findings}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
