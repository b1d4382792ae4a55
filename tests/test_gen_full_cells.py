"""Every cell of the generative suite's ``full`` profile trains, at a tiny budget, before a cluster user meets it.

Cells are (dataset, model, placement params); each runs with the first and the last norm its grid lists, for four
batches, with tiny evaluation settings. The file datasets (MNIST, Fashion-MNIST, CIFAR-10 from a local folder)
get small synthetic files in the official formats.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from wnbench.gen import write_idx
from wnbench.suite.spec import load_suite

ROOT = Path(__file__).resolve().parent.parent
FULL = load_suite(ROOT / "suites" / "gen.yaml", "full", run_kind_checks=False)


def _cells() -> dict[str, list]:
    cells: dict[str, list] = {}
    for run in FULL.runs:
        key = json.dumps([run.task, run.algo, run.params], sort_keys=True, default=str)
        cells.setdefault(key, []).append(run)
    return cells


CELLS = _cells()
TINY = {"eval_samples": 16, "classifier_epochs": 1, "reconstruction_steps": 1, "reconstruction_images": 2}


def _fake_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("mnist", "fashion-mnist"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for prefix, n in (("train", 120), ("t10k", 40)):
            write_idx(
                folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            )
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir(parents=True, exist_ok=True)
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            b"data": rng.integers(0, 256, (24, 3072), dtype=np.uint8),
            b"labels": list(np.arange(24) % 10),
        }
        with (cifar / batch).open("wb") as f:
            pickle.dump(entry, f)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(
    "key", list(CELLS), ids=[f"{r[0].algo}-{r[0].task}-{i}" for i, r in enumerate(CELLS.values())]
)
def test_every_full_profile_cell_trains_at_a_tiny_budget(key, tmp_path):
    from wnbench.gen.kind import _hyperparam_overrides, _network_norms
    from wnbench.gen.train import train_gen

    runs = CELLS[key]
    data_dir = _fake_data(tmp_path / "data")
    for run in {id(r): r.to_spec() for r in (runs[0], runs[-1])}.values():
        overrides = {**_hyperparam_overrides(run.params), **TINY, "epochs": 1}
        if run.algo == "vae":
            overrides = {k: v for k, v in overrides.items() if k not in TINY}
            overrides["epochs"] = 1
        record = train_gen(
            run.algo, run.task, norms=_network_norms(run), hyperparams=overrides, seed=0, max_steps=4,
            data_dir=data_dir, cache_dir=tmp_path / "cache", download=False,
        )  # fmt: skip
        final = record["final"]
        assert final, (run.task, run.algo, run.norm)
        headline = (
            "test_elbo_nats"
            if run.algo == "vae"
            else ("fid_feature" if run.task not in ("ring8", "grid25") else "hq_coverage_pct")
        )
        assert math.isfinite(final[headline]), (run.task, run.algo, run.norm, final)
