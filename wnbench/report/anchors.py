"""Fixed anchors for normalized scores: a score maps to (score - low) / (high - low) with anchors that depend on
the task only, never on which norms ran, so adding or removing a norm moves no other norm's normalized score.

- RL: low = the uniform-random policy's mean episode return on the task (measured once, 100 episodes, seed 0,
  cached in ``anchors.yaml``), high = the published figure of the cell's algorithm on the task (rl-baselines3-zoo's
  ``benchmark.md``, or the entry's ``source``; the task's entry for another algorithm where none is listed, named
  in the report).
- RL peer check (:func:`peer_figures`): the figure holds at its own budget (the entry's ``steps``; else the zoo's
  ``n_timesteps``, the record's resolved hyperparameters). A cell run at a budget below it is graded against the
  reference's learning curve at the cell's budget (a ``curve`` point within ``CURVE_TOLERANCE``) where one is
  published; else the final figure is only a bar to reach: reaching it is at peer (fewer steps, same figure),
  missing it is *no reference at this budget* (:data:`BASIS_REACHED_ONLY`), never *below peer*.
- Generative: stated references. VAE test ELBO on binarized data: low = the independent per-pixel model's
  log-likelihood (``-nll_baseline_independent_nats``, in each record), high = 0 nats (a perfect model of discrete
  data). GAN on a Gaussian mixture, modes covered: low = 0, high = the mixture's number of modes.
- Anything else (image-GAN feature FID, toy MSE, throughput): min-max over the cell's runs, all norms together,
  marked *min-max* wherever it is shown: those normalized scores do move when the norm set changes.

Regenerate the random-policy scores (one-off, ~1 min): ``python -m wnbench.report.anchors --measure``;
``--missing`` measures only the tasks whose ``random`` is empty and rewrites only those lines of the file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ANCHORS_FILE = Path(__file__).with_name("anchors.yaml")
#: Modes of the mixture datasets (wnbench.gen.data): modes_covered is anchored at [0, modes].
MIXTURE_MODES = {"ring8": 8, "grid25": 25}
RANDOM_EPISODES = 100
RANDOM_SEED = 0
#: A learning-curve point grades a cell whose budget is within this share of the point's step count.
CURVE_TOLERANCE = 0.10
#: How a peer figure applies to the cell's budget: the figure at (about) the cell's budget, a point of the
#: reference's learning curve near it, or a final figure at a larger budget that the cell can only reach.
BASIS_FINAL, BASIS_CURVE, BASIS_REACHED_ONLY = "final", "curve", "reached only"
#: What a learning-curve point measures: one evaluation of the policy at that step, or a training-return average.
CURVE_EVALUATION, CURVE_TRAINING = "evaluation", "training"


@dataclass(frozen=True)
class Anchor:
    """``low`` and ``high`` in the metric's raw units (either may be the larger: lower-is-better metrics)."""

    low: float
    high: float
    source: str  # "fixed: random policy 22.3, rl-zoo ppo 500" or "min-max"
    steps: float = 0.0  # RL: the budget ``high`` was published at (0: unknown)
    basis: str = BASIS_FINAL  # peer figures: BASIS_FINAL, BASIS_CURVE or BASIS_REACHED_ONLY
    #: A curve point that is one evaluation of the reference's policy at this step (the zoo's evaluations.npz): the
    #: peer check reads each run's own evaluation there, like for like, not its final_return (a mean over its last
    #: evaluations, which lags a steep curve). 0: the figure is graded on the cell's primary metric.
    at_step: float = 0.0

    @property
    def fixed(self) -> bool:
        return not self.source.startswith("min-max")

    def normalize(self, values: np.ndarray) -> np.ndarray:
        span = self.high - self.low
        if span == 0:
            return np.zeros_like(values, dtype=float)
        return (np.asarray(values, dtype=float) - self.low) / span


@functools.cache
def load_anchor_table(path: Path = ANCHORS_FILE) -> dict[str, Any]:
    """The committed anchor file: ``{"rl": {task: {"random": x, "reference": {algo: y}}}, ...}``."""
    return yaml.safe_load(path.read_text()) or {}


@dataclass(frozen=True)
class RLReference:
    """One published RL figure: ``value`` at ``steps`` (``None``: the zoo's ``n_timesteps`` for the algorithm),
    learning-curve points ``{steps: value}`` below it, and where both come from."""

    algo: str  # the entry's algorithm (the fallback's where the cell's algorithm has none)
    value: float
    steps: float | None = None
    source: str = "rl-zoo"
    curve: tuple[tuple[float, float], ...] = ()
    via: str = ""  # "ppo", or "sac (no crossq entry)"
    #: CURVE_EVALUATION: each point is one evaluation of the reference's policy at that step (the zoo's agents);
    #: CURVE_TRAINING: a moving average of training returns (MinAtar's published curves).
    curve_kind: str = CURVE_EVALUATION


def _reference(algo: str, raw: Any) -> RLReference:
    """An entry is a number (the zoo's figure at the zoo's budget) or a mapping: ``value`` and optional ``steps``,
    ``source``, ``curve`` ({steps: value}), ``curve_source`` and ``curve_kind`` (``evaluation``, the default, or
    ``training``)."""
    if not isinstance(raw, Mapping):
        return RLReference(algo, float(raw))
    curve = tuple(sorted((float(k), float(v)) for k, v in (raw.get("curve") or {}).items()))
    steps = raw.get("steps")
    kind = str(raw.get("curve_kind") or CURVE_EVALUATION)
    if kind not in (CURVE_EVALUATION, CURVE_TRAINING):
        raise ValueError(f"anchors: curve_kind must be {CURVE_EVALUATION} or {CURVE_TRAINING}, got {kind!r}")
    return RLReference(
        algo, float(raw["value"]), float(steps) if steps else None, str(raw.get("source") or "rl-zoo"), curve,
        curve_kind=kind,
    )  # fmt: skip


def rl_reference(task: str, algo: str, table: Mapping[str, Any] | None = None) -> RLReference | None:
    """The task's published figure for ``algo`` (or its ``fallback`` entry's), ``None`` where the task has none."""
    entry = (table if table is not None else load_anchor_table()).get("rl", {}).get(task)
    if not entry or entry.get("random") is None or not entry.get("reference"):
        return None
    refs = entry["reference"]
    if algo in refs:
        key, via = algo, algo
    else:
        key = entry.get("fallback", next(iter(refs)))
        via = f"{key} (no {algo} entry)"
    ref = _reference(key, refs[key])
    return RLReference(ref.algo, ref.value, ref.steps, ref.source, ref.curve, via, ref.curve_kind)


def rl_anchor(task: str, algo: str, table: Mapping[str, Any] | None = None) -> Anchor | None:
    entry = (table if table is not None else load_anchor_table()).get("rl", {}).get(task)
    ref = rl_reference(task, algo, table)
    if ref is None:
        return None
    random_score = float(entry["random"])
    return Anchor(
        random_score, ref.value, f"fixed: random policy {random_score:.4g}, {ref.source} {ref.via} {ref.value:.4g}",
        steps=ref.steps or 0.0,
    )  # fmt: skip


def rl_peer_anchor(
    task: str, algo: str, budget: float, zoo_steps: float = 0.0, table: Mapping[str, Any] | None = None
) -> Anchor | None:
    """The figure a cell run for ``budget`` steps is graded against (random policy low): the final figure where
    the budget reaches its ``steps`` (``zoo_steps`` where the entry names none; within ``CURVE_TOLERANCE``, or
    either unknown), else the learning-curve point nearest the budget within ``CURVE_TOLERANCE`` (an evaluation
    point sets ``at_step``: runs are read at that step), else the final figure marked :data:`BASIS_REACHED_ONLY`."""
    anchor = rl_anchor(task, algo, table)
    ref = rl_reference(task, algo, table)
    if anchor is None or ref is None:
        return None
    ref_steps = ref.steps or float(zoo_steps or 0)
    anchor = Anchor(anchor.low, anchor.high, anchor.source, steps=ref_steps)
    if not budget or not ref_steps or budget >= (1 - CURVE_TOLERANCE) * ref_steps:
        return anchor
    near = [(abs(s - budget), s, v) for s, v in ref.curve if abs(s - budget) <= CURVE_TOLERANCE * budget]
    if near:
        _, steps, value = min(near)
        source = (
            f"fixed: random policy {anchor.low:.4g}, {ref.source} {ref.via} curve {value:.4g} at {steps:,.0f}"
        )
        at_step = steps if ref.curve_kind == CURVE_EVALUATION else 0.0
        return Anchor(anchor.low, value, source, steps=steps, basis=BASIS_CURVE, at_step=at_step)
    return Anchor(anchor.low, anchor.high, anchor.source, steps=ref_steps, basis=BASIS_REACHED_ONLY)


def record_anchor(record: Mapping[str, Any], metric: str) -> Anchor | None:
    """The fixed anchor of a record's metric, or ``None`` when there is none (the caller falls back to min-max)."""
    c = record["config"]
    if c["kind"] == "rl" and metric in ("final_return", "auc_normalized"):
        return rl_anchor(c["task"], c["algo"])
    if c["kind"] == "gen":
        if metric == "modes_covered" and c["task"] in MIXTURE_MODES:
            modes = MIXTURE_MODES[c["task"]]
            return Anchor(0.0, float(modes), f"fixed: 0 and {modes} modes")
        if metric == "elbo_test_nats":
            base = (record.get("metrics") or {}).get("nll_baseline_independent_nats")
            hyper = (c.get("resolved") or {}).get("hyperparams") or {}
            binary = hyper.get("likelihood", "bernoulli") == "bernoulli" and hyper.get("binarize", True)
            if isinstance(base, int | float) and math.isfinite(base) and base > 0 and binary:
                return Anchor(
                    -float(base), 0.0, f"fixed: independent-pixel model {-base:.4g} nats, perfect 0"
                )
    return None


def peer_figures(record: Mapping[str, Any], primary: str) -> list[tuple[str, Anchor]]:
    """The published figures a cell's peer-baseline arm should reach, as (metric, anchor) with the figure as the
    anchor's high end: RL, the primary metric against its published figure at the cell's budget (random policy
    low; :func:`rl_peer_anchor`: a learning-curve point below the figure's budget, or the figure marked *reached
    only*); a GAN on a Gaussian
    mixture, PacGAN's Table 1 modes and high-quality share (low 0). Empty where nothing is published."""
    c = record["config"]
    if c["kind"] == "rl":
        if primary not in ("final_return", "auc_normalized"):
            return []
        zoo_steps = float((c.get("resolved") or {}).get("n_timesteps") or 0)
        run = (record.get("metrics") or {}).get("total_steps")  # steps run (PPO rounds up to whole rollouts)
        budget = float(run or (c.get("budget") or {}).get("steps") or zoo_steps)
        anchor = rl_peer_anchor(c["task"], c["algo"], budget, zoo_steps)
        return [(primary, anchor)] if anchor is not None else []
    table = load_anchor_table().get("gen_peer") or {}
    figures = dict((table.get(str(c.get("algo"))) or {}).get(str(c.get("task"))) or {})
    source = figures.pop("source", table.get("source", "published"))  # a cell's own source, else the table's
    out = []
    for metric, value in figures.items():
        # a bare figure is anchored at 0 (modes, HQ share); {figure, low} names the low end, e.g. for a lower-is-
        # better KL the worst value (one mode: log 1000), so the published figure still normalizes to 1
        low, figure = (
            (float(value["low"]), float(value["figure"])) if isinstance(value, Mapping) else (0.0, value)
        )
        out.append((metric, Anchor(low, float(figure), f"fixed: {low:.4g}, {source} {float(figure):.4g}")))
    return out


def minmax_anchor(values: Sequence[float], higher_is_better: bool) -> Anchor:
    """Worst and best finite value of the cell: the fallback where no fixed anchor exists."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if not finite.size:
        return Anchor(0.0, 1.0, "min-max (no finite value)")
    worst, best = (finite.min(), finite.max()) if higher_is_better else (finite.max(), finite.min())
    return Anchor(float(worst), float(best), "min-max over the cell's runs")


# -- measuring the random-policy scores (one-off; the report reads the cached file) ----------------------------
def random_policy_return(task: str, episodes: int = RANDOM_EPISODES, seed: int = RANDOM_SEED) -> float:
    """Mean undiscounted return of uniformly random actions over ``episodes`` episodes (gymnasium)."""
    import gymnasium as gym

    from wnbench.rl.tasks import register_envs

    register_envs()
    env = gym.make(task)
    env.action_space.seed(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def measure(path: Path = ANCHORS_FILE) -> dict[str, Any]:
    """Re-measure every RL task's random-policy score in ``path`` (references are kept as written)."""
    table = yaml.safe_load(path.read_text())
    for task, entry in table["rl"].items():
        entry["random"] = round(random_policy_return(task), 3)
        print(f"{task}: random policy {entry['random']} ({RANDOM_EPISODES} episodes, seed {RANDOM_SEED})")
    return table


def set_random_lines(text: str, measured: Mapping[str, float]) -> str:
    """``text`` (anchors.yaml) with the ``random:`` line of each task of ``measured`` in its ``rl:`` section set to
    the measured score; every other line (comments, other sections) unchanged."""
    out, in_rl, task = [], False, None
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.startswith((" ", "#")):
            in_rl, task = line.rstrip() == "rl:", None
        elif in_rl and line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            task = line.strip()[:-1].strip("'\"")
        elif in_rl and task in measured and line.startswith("    random:"):
            line = f"    random: {measured[task]}\n"
        out.append(line)
    return "".join(out)


def measure_missing(path: Path = ANCHORS_FILE) -> dict[str, float]:
    """Measure the random-policy score of each RL task in ``path`` whose ``random`` is empty and write it in
    place (:func:`set_random_lines`)."""
    table = yaml.safe_load(path.read_text())
    measured = {}
    for task, entry in table["rl"].items():
        if entry.get("random") is None:
            measured[task] = round(random_policy_return(task), 3)
            print(f"{task}: random policy {measured[task]} ({RANDOM_EPISODES} episodes, seed {RANDOM_SEED})")
    path.write_text(set_random_lines(path.read_text(), measured))
    return measured


if __name__ == "__main__":  # pragma: no cover - the one-off measurement
    import sys

    if "--measure" not in sys.argv:
        sys.exit("usage: python -m wnbench.report.anchors --measure [--missing]")
    if "--missing" in sys.argv:
        measure_missing()
        sys.exit(0)
    table = measure()
    text = ANCHORS_FILE.read_text()
    head = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    ANCHORS_FILE.write_text(head + yaml.safe_dump(table, sort_keys=False))
