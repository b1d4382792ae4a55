"""Fixed anchors for normalized scores: a score maps to (score - low) / (high - low) with anchors that depend on
the task only, never on which norms ran, so adding or removing a norm moves no other norm's normalized score.

- RL: low = the uniform-random policy's mean episode return on the task (measured once, 100 episodes, seed 0,
  cached in ``anchors.yaml``), high = the rl-baselines3-zoo ``benchmark.md`` mean reward of the cell's algorithm
  on the task (the task's entry for another algorithm where the zoo lists none, named in the report).
- Generative: stated references. VAE test ELBO on binarized data: low = the independent per-pixel model's
  log-likelihood (``-nll_baseline_independent_nats``, in each record), high = 0 nats (a perfect model of discrete
  data). GAN on a Gaussian mixture, modes covered: low = 0, high = the mixture's number of modes.
- Anything else (image-GAN feature FID, toy MSE, throughput): min-max over the cell's runs, all norms together,
  marked *min-max* wherever it is shown: those normalized scores do move when the norm set changes.

Regenerate the random-policy scores (one-off, ~1 min): ``python -m wnbench.report.anchors --measure``.
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


@dataclass(frozen=True)
class Anchor:
    """``low`` and ``high`` in the metric's raw units (either may be the larger: lower-is-better metrics)."""

    low: float
    high: float
    source: str  # "fixed: random policy 22.3, rl-zoo ppo 500" or "min-max"

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


def rl_anchor(task: str, algo: str, table: Mapping[str, Any] | None = None) -> Anchor | None:
    entry = (table if table is not None else load_anchor_table()).get("rl", {}).get(task)
    if not entry or "random" not in entry or not entry.get("reference"):
        return None
    refs = entry["reference"]
    if algo in refs:
        ref, via = float(refs[algo]), algo
    else:
        via = entry.get("fallback", next(iter(refs)))
        ref = float(refs[via])
        via = f"{via} (no {algo} entry)"
    random_score = float(entry["random"])
    return Anchor(random_score, ref, f"fixed: random policy {random_score:.4g}, rl-zoo {via} {ref:.4g}")


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
    anchor's high end: RL, the primary metric against rl-baselines3-zoo (random policy low); a GAN on a Gaussian
    mixture, PacGAN's Table 1 modes and high-quality share (low 0). Empty where nothing is published."""
    c = record["config"]
    if c["kind"] == "rl":
        anchor = record_anchor(record, primary)
        return [(primary, anchor)] if anchor is not None and anchor.fixed else []
    table = load_anchor_table().get("gen_peer") or {}
    figures = (table.get(str(c.get("algo"))) or {}).get(str(c.get("task"))) or {}
    source = table.get("source", "published")
    return [(m, Anchor(0.0, float(v), f"fixed: 0, {source} {float(v):.4g}")) for m, v in figures.items()]


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


if __name__ == "__main__":  # pragma: no cover - the one-off measurement
    import sys

    if "--measure" not in sys.argv:
        sys.exit("usage: python -m wnbench.report.anchors --measure")
    table = measure()
    text = ANCHORS_FILE.read_text()
    head = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    ANCHORS_FILE.write_text(head + yaml.safe_dump(table, sort_keys=False))
