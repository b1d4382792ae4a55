"""The ``toy`` run kind: a small MLP with a chosen norm fitting a synthetic regression in about a second.

It exists to exercise the suite engine (tests, ``suites/smoke.yaml``) without RL or GAN code. Deterministic given
its spec: the data come from ``data_seed``, the initialization and minibatches from the run's seed.

``fault`` is a TEST-ONLY hook that makes the run misbehave at step ``fault_step`` so the engine's failure handling
can be checked: ``raise`` (an exception -> ``failed``), ``nan`` (the loss becomes NaN -> ``diverged``), ``hang``
(sleeps past any time limit -> ``timeout``), ``crash`` (the process kills itself, as an OOM kill would -> ``failed``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from wnbench.suite.kinds import RunContext, RunSpec, Scoring

#: Toy tasks: name -> (input features, description).
TOY_TASKS: dict[str, tuple[int, str]] = {
    "regression": (8, "y = sin(x @ a) + 0.5 * (x @ b)^2 + noise, x ~ N(0, I_8)"),
    "regression_wide": (32, "the same target with 32 input features"),
}
TOY_ALGOS = ("mlp",)
DEFAULT_STEPS = 300  # when the profile's budget gives no steps
#: Toy runs are graded by held-out mean squared error.
SCORING = Scoring({"test_mse": "min", "train_mse": "min"}, lambda config: "test_mse")


class ToyParams(BaseModel):
    """Per-run parameters of the toy regression."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(1e-2, gt=0)
    batch_size: int = Field(64, ge=2)
    hidden: list[int] = Field(default_factory=lambda: [64, 64])
    n_train: int = Field(2048, ge=16)
    n_test: int = Field(512, ge=16)
    noise: float = Field(0.1, ge=0)
    data_seed: int = 0
    log_every: int = Field(10, ge=1)
    fault: Literal["none", "raise", "nan", "hang", "crash"] = Field(
        "none", description="TEST-ONLY failure hook"
    )
    fault_step: int = Field(5, ge=0)


def make_data(
    task: str, n_train: int, n_test: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test sets of ``task``: one target map (fixed by ``seed``), independent inputs and noise."""
    generator = torch.Generator().manual_seed(seed)
    features = TOY_TASKS[task][0]
    a = torch.randn(features, 1, generator=generator) / features**0.5
    b = torch.randn(features, 1, generator=generator) / features**0.5

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, features, generator=generator)
        return x, torch.sin(3 * x @ a) + 0.5 * (x @ b) ** 2 + noise * torch.randn(n, 1, generator=generator)

    return (*sample(n_train), *sample(n_test))


def validate_toy(spec: RunSpec) -> list[str]:
    """Toy-specific checks: known task and algo, hidden widths the norm can take."""
    problems = []
    if spec.task not in TOY_TASKS:
        problems.append(f"task: unknown toy task '{spec.task}'; known: {', '.join(TOY_TASKS)}")
    if spec.algo not in TOY_ALGOS:
        problems.append(f"algo: unknown toy model '{spec.algo}'; known: {', '.join(TOY_ALGOS)}")
    if spec.task in TOY_TASKS:
        try:
            spec.make_norm().mlp(TOY_TASKS[spec.task][0], spec.params.hidden, 1)
        except ValueError as err:
            problems.append(f"norm: {err}")
    return problems


def run_toy(spec: RunSpec, ctx: RunContext) -> dict[str, float]:
    """Train the toy MLP with Adam on random minibatches; return the final train and test MSE."""
    params: ToyParams = spec.params  # type: ignore[assignment]
    steps = spec.budget.steps or DEFAULT_STEPS
    x_train, y_train, x_test, y_test = make_data(
        spec.task, params.n_train, params.n_test, params.noise, params.data_seed
    )

    torch.manual_seed(spec.seed)
    batch_gen = torch.Generator().manual_seed(spec.seed)
    norm = spec.make_norm()
    model = norm.mlp(x_train.shape[1], params.hidden, 1)
    norm.initialize(model, x_train[: params.batch_size])
    ctx.details.update(
        norm=norm.label,
        parameters=sum(p.numel() for p in model.parameters()),
        device="cpu",
        torch_threads=torch.get_num_threads(),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    loss_fn = nn.MSELoss()

    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(0, params.n_train, (params.batch_size,), generator=batch_gen)
        loss = loss_fn(model(x_train[index]), y_train[index])
        if params.fault != "none" and step >= params.fault_step:
            _inject_fault(params.fault, loss)
            if params.fault == "nan":
                loss = loss * float("nan")
        ctx.check_finite(step, loss=loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % params.log_every == 0 or step == steps:
            ctx.log({"train_loss": loss.item()}, step=step)
    ctx.check_finite(steps, module=model)

    model.eval()
    with torch.no_grad():
        test_mse = loss_fn(model(x_test), y_test).item()
        train_mse = loss_fn(model(x_train), y_train).item()
    ctx.log({"test_mse": test_mse}, step=steps)
    return {"train_mse": train_mse, "test_mse": test_mse, "steps": float(steps)}


def _inject_fault(fault: str, loss: torch.Tensor) -> None:
    if fault == "raise":
        raise RuntimeError("toy fault injected: raise (test-only)")
    if fault == "hang":
        while True:
            time.sleep(1.0)
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
