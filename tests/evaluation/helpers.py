"""Rows in the store's long format, with a full protocol, for the table and plot tests."""
from __future__ import annotations

import json

import pandas as pd

PROTO = {"task": "mnist", "extractor": "domain-mnist", "extractor_hash": "abc", "n_gen": 500, "n_ref": 10000,
         "reference_split": "test", "reference_hash": "r1", "resolution": [28, 28], "sampler": "heun",
         "steps": 20, "nfe": 78, "cfg_scale": 3.0, "ema": 0.999,
         "budget": {"images_seen": 67200, "parameters": 729776, "batch_size": 96, "steps": 700}}


def rows(method, metric, values, **proto_changes):
    out = []
    for seed, v in enumerate(values):
        p = {**PROTO, "seed": seed, **proto_changes}
        out.append({"run_id": f"{method}-{seed}", "method": method, "metric": metric, "value": v,
                    "protocol_json": json.dumps(p)})
    return out


def frame(*groups):
    return pd.DataFrame([r for g in groups for r in g])
