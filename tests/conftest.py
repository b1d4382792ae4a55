"""Shared test set-up: one torch thread (CI has 2 cores), W&B never reaches the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


def toy_suite(
    name: str = "toy",
    *,
    claims: str = "[C5]",
    norms: str = "[none, batch]",
    seeds: int = 2,
    n_train: int = 64,
    n_test: int = 32,
    budget: str = "{steps: 20, time_limit_s: 60}",
    extra: str = "",
) -> str:
    """A whole toy suite file's text (one ``default`` profile: a regression MLP, the norms and seeds given), the
    one every engine, publish, integrity and tuning test starts from; ``extra`` is appended inside the profile
    (4-space indent), e.g. a ``tune:`` block."""
    return (
        f"name: {name}\nclaims: {claims}\nprofiles:\n  default:\n    kind: toy\n    tasks: [regression]\n"
        f"    algos: [mlp]\n    norms: {norms}\n    params: {{hidden: [8], n_train: {n_train}, n_test: {n_test}}}\n"
        f"    seeds: {seeds}\n    budget: {budget}\n{extra}"
    )


#: The smallest toy profile that exercises the engine: two norms x two seeds of a 20-step regression (seconds).
TINY_TOY_PROFILE = "\n" + toy_suite().split("profiles:\n", 1)[1]


@pytest.fixture
def no_wandb():
    """Tracking off: suite runs in tests never start W&B."""
    from wnbench.tracking import TrackingOptions

    return TrackingOptions(mode="disabled")


@pytest.fixture
def suite_file(tmp_path):
    """``suite_file(profiles=TINY_TOY_PROFILE, name="toy", claims="[C5]")`` writes ``tmp_path/suite.yaml`` with
    those profiles (the YAML under ``profiles:``) and returns its path; ``suite_file(text=...)`` writes a whole
    suite file as given."""

    def write(
        profiles: str = TINY_TOY_PROFILE, *, name: str = "toy", claims: str = "[C5]", text: str = ""
    ) -> Path:
        path = tmp_path / "suite.yaml"
        path.write_text(text or f"name: {name}\nclaims: {claims}\nprofiles:\n{profiles}")
        return path

    return write


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``wnbench ARGS`` in this process (the local executor still runs each run in its own process): (exit code,
    stdout, stderr)."""
    from wnbench import cli

    monkeypatch.setattr(sys, "argv", ["wnbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err
