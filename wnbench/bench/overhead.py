"""Claim C3: what each norm costs, as ratios to ``none``, measured side by side in one process.

For every model in :data:`BENCH_MODELS` and every norm: the median train-step time (forward, MSE loss,
backward, Adam step, on a full batch), the median single-observation no-grad forward time in eval mode
(an SB3 ``predict`` or a one-sample generator call), and the peak memory of a train step.

The act step is measured in steady state: the first call after a parameter update, in which a WN layer
recomputes its cached weight (one weight-norm per layer), is left out. Algorithms that update after
every environment step (SAC, TD3 with ``train_freq=1``) pay that refresh on every action.

Timing is interleaved: each repeat times one block of steps for every norm, in a fresh random order,
and each norm's time is divided by ``none``'s time *in the same repeat*. Ratios are the median of those
paired ratios (with the quartiles), so drift in a shared machine's speed cancels instead of biasing
whichever norm ran during a slow minute.

Recurrent models (``lstm_t16``, ``lstm_t64``) are timed with the norms that have a recurrent form; their
rows also give the train-step time per time step. There ``torch_weight_norm`` is the WN-LSTM as it was before
:class:`wnbench.norms.weightnorm.WNLSTM` (torch's parametrization on every weight), beside ``weight`` (WNLSTM).

Projecting kinds (forced_weight, nap, hyperspherical) have their projection attached to the optimizer, so the
train step includes it, as in training. ``none`` there is torch's fused ``nn.LSTM`` kernel, while
the layer- and batch-normalized LSTMs step in Python, so compare those two with each other as well.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated``; on CPU (no allocator counters), the
persistent bytes (parameters, buffers, optimizer state) plus the highest running sum of the
allocations and frees that torch's profiler records during one train step.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wnbench.errors import UserError
from wnbench.norms import attach_projection

from .models import (
    BENCH_MODELS,
    DEFAULT_MODELS,
    BenchModel,
    TorchWeightNormReference,
    norm_problems,
    resolve_norm,
)

DEFAULT_NORMS = ["none", "batch", "batch_renorm", "layer", "group", "weight", "weight_meanonly", "spectral",
                 "weight+batch_renorm", "weight+layer", "forced_weight", "forced_weight_mp", "nap", "hyperspherical",
                 TorchWeightNormReference.name]  # fmt: skip


@dataclass
class OverheadRow:
    """One (norm, model) result. Ratios are to ``none`` on the same model; q25/q75 are their quartiles."""

    norm: str
    model: str
    train_step_ratio: float
    act_step_ratio: float
    peak_memory_ratio: float
    train_step_ratio_q25: float
    train_step_ratio_q75: float
    act_step_ratio_q25: float
    act_step_ratio_q75: float
    train_step_ms: float
    act_step_us: float
    peak_memory_mb: float
    #: Time steps per sample (1 for feed-forward models); train_step_ms / steps is the time per step.
    steps: int = 1


def check_names(norms: Sequence[str], models: Sequence[str]) -> None:
    """Refuse unknown norm/model names before anything is timed."""
    problems = norm_problems(norms)
    problems += [
        f"--models: unknown model '{m}'; known: {', '.join(BENCH_MODELS)}"
        for m in models
        if m not in BENCH_MODELS
    ]
    if problems:
        raise UserError("bad benchmark arguments", problems)


class _Subject:
    """One model with one norm, its optimizer and fixed inputs, ready to be timed."""

    def __init__(self, spec: BenchModel, norm_name: str, device: torch.device, seed: int) -> None:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        norm = resolve_norm(norm_name)
        self.model = spec.build(norm).to(device)
        self.x = spec.inputs(spec.batch_size, gen, device)
        self.y = spec.targets(spec.batch_size, gen, device)
        self.x1 = spec.inputs(1, gen, device)
        norm.initialize(self.model, self.x)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        attach_projection(self.opt, self.model)  # projecting kinds pay their projection in the train step

    def forward_backward(self) -> None:
        loss = F.mse_loss(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()

    def train_step(self) -> None:
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        self.forward_backward()

    def act_step(self) -> None:
        self.model.eval()
        with torch.no_grad():
            self.model(self.x1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_block(fn: Callable[[], None], n: int, device: torch.device) -> float:
    """Seconds per call of ``fn``, over a block of ``n`` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / n


def _block_size(fn: Callable[[], None], device: torch.device, target_s: float) -> int:
    per_call = _time_block(fn, 3, device)
    return max(1, int(target_s / max(per_call, 1e-7)))


def _unique_bytes(tensors) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.numel():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def peak_train_memory(subject: _Subject, device: torch.device) -> int:
    """Peak bytes held during one train step (see the module docstring for how, per device)."""
    subject.model.train()
    subject.opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        subject.forward_backward()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    from torch.profiler import ProfilerActivity, profile

    opt_state = [v for state in subject.opt.state.values() for v in state.values()]
    persistent = _unique_bytes([*subject.model.parameters(), *subject.model.buffers(), *opt_state])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        subject.forward_backward()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return persistent + peak


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def measure_overhead(
    norms: Sequence[str] = DEFAULT_NORMS,
    models: Sequence[str] = DEFAULT_MODELS,
    repeats: int = 21,
    device: str = "cpu",
    seed: int = 0,
    block_seconds: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> list[OverheadRow]:
    """Time every (norm, model) pair interleaved with ``none``; returns one row per pair (``none`` included)."""
    check_names(norms, models)
    if repeats < 1:
        raise UserError("bad benchmark arguments", [f"--repeats: must be >= 1, got {repeats}"])
    dev = torch.device(device)
    order = ["none", *[n for n in norms if n != "none"]]
    rng = random.Random(seed)
    rows: list[OverheadRow] = []
    for model_name in models:
        spec = BENCH_MODELS[model_name]
        model_order = [n for n in order if not spec.recurrent or resolve_norm(n).supports_recurrent]
        subjects = {n: _Subject(spec, n, dev, seed) for n in model_order}
        for s in subjects.values():  # warm-up: allocator, kernels, caches
            for _ in range(3):
                s.train_step()
                s.act_step()
        n_train = _block_size(subjects["none"].train_step, dev, block_seconds)
        n_act = _block_size(subjects["none"].act_step, dev, block_seconds / 2)
        train: dict[str, list[float]] = {n: [] for n in model_order}
        act: dict[str, list[float]] = {n: [] for n in model_order}
        for rep in range(repeats):
            # Train blocks then act blocks, each in a fresh order: an act block never inherits the cache
            # state of its own norm's train block more than another norm's.
            for times, step, n_steps in ((train, "train_step", n_train), (act, "act_step", n_act)):
                shuffled = model_order[:]
                rng.shuffle(shuffled)
                for n in shuffled:
                    fn = getattr(subjects[n], step)
                    fn()  # untimed: a WN layer refreshes its cached weight on the first call after an update
                    times[n].append(_time_block(fn, n_steps, dev))
            if progress:
                progress(f"{model_name}: repeat {rep + 1}/{repeats}")
        memory = {n: peak_train_memory(subjects[n], dev) for n in model_order}
        for n in model_order:
            tr = _quantiles([t / b for t, b in zip(train[n], train["none"], strict=True)])
            ac = _quantiles([t / b for t, b in zip(act[n], act["none"], strict=True)])
            rows.append(
                OverheadRow(
                    norm=n, model=model_name,
                    train_step_ratio=tr[1], act_step_ratio=ac[1], peak_memory_ratio=memory[n] / memory["none"],
                    train_step_ratio_q25=tr[0], train_step_ratio_q75=tr[2],
                    act_step_ratio_q25=ac[0], act_step_ratio_q75=ac[2],
                    train_step_ms=statistics.median(train[n]) * 1e3, act_step_us=statistics.median(act[n]) * 1e6,
                    peak_memory_mb=memory[n] / 2**20, steps=spec.steps,
                )
            )  # fmt: skip
        del subjects
    return rows
