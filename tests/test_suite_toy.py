"""The toy run kind: it learns, it is deterministic in-process too, and ctx.check_finite catches divergence."""

from __future__ import annotations

import pytest
import torch

from wnbench.suite import Budget, Diverged, RunContext, RunSpec
from wnbench.toy import ToyParams, make_data, run_toy


def toy_spec(norm: str = "weight_ddi", seed: int = 0, steps: int = 200, **params) -> RunSpec:
    return RunSpec(
        kind="toy",
        task="regression",
        algo="mlp",
        norm={"name": norm},
        seed=seed,
        params=ToyParams(**params),
        budget=Budget(time_limit_s=60, steps=steps),
    )


def context(tmp_path) -> RunContext:
    return RunContext(run_id="t", run_dir=tmp_path, seed=0, deadline=float("inf"))


@pytest.mark.parametrize("norm", ["none", "batch", "weight_ddi"])
def test_toy_learns_better_than_predicting_the_mean(tmp_path, norm):
    _, _, _, y_test = make_data("regression", 2048, 512, 0.1, seed=0)
    ctx = context(tmp_path)
    metrics = run_toy(toy_spec(norm), ctx)
    assert metrics["test_mse"] < 0.7 * y_test.var().item()
    losses = ctx.curves["train_loss"]["value"]
    assert ctx.curves["train_loss"]["step"][-1] == 200 and losses[-1] < losses[0]


def test_toy_is_deterministic_given_its_seed(tmp_path):
    first = run_toy(toy_spec(seed=3, steps=50), context(tmp_path))
    torch.manual_seed(12345)  # global RNG state must not matter
    second = run_toy(toy_spec(seed=3, steps=50), context(tmp_path))
    assert first == second
    assert run_toy(toy_spec(seed=4, steps=50), context(tmp_path)) != first


def test_nan_fault_is_caught_as_divergence_at_its_step(tmp_path):
    with pytest.raises(Diverged) as err:
        run_toy(toy_spec(fault="nan", fault_step=9), context(tmp_path))
    assert err.value.step == 9


def test_check_finite_flags_non_finite_parameters(tmp_path):
    model = torch.nn.Linear(2, 2)
    ctx = context(tmp_path)
    ctx.check_finite(1, loss=torch.tensor(0.5), module=model)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(Diverged, match="non-finite parameter 'weight'"):
        ctx.check_finite(2, module=model)
