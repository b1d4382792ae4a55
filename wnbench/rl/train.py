"""One RL run as a pure function of its spec: train, evaluate periodically, return the record.

    record = train_rl("ppo", "CartPole-v1", norm="weight_ddi", seed=0, total_steps=50_000)
    record["final_return"], record["auc_normalized"], record["steps_per_s"]

Everything SB3's logger records (``rollout/*``, ``train/*``, ``time/*``) is forwarded to ``log_fn(metrics,
step)`` through an SB3 output format (:class:`CallbackOutputFormat`), and so is the evaluation curve
(``eval/mean_return``...). Runs are deterministic given the seed on CPU (one torch thread).

Throughput is reported twice: ``steps_per_s`` (wall clock, training only — evaluation excluded) and
``steps_per_cpu_s`` (this process's CPU time), which is far less disturbed by other processes sharing
the cores, so norm-to-norm ratios from it are steadier on a busy machine.

A run whose parameters, losses or evaluation returns become NaN/inf raises :class:`RunDiverged` (a
``FloatingPointError``) carrying the env step at which it was noticed; the suite engine records it as
``diverged``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import CSVOutputFormat, KVWriter, Logger
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from wnbench.errors import UserError
from wnbench.rl.diagnostics import DiagnosticsCallback
from wnbench.rl.extractors import resolve_norm
from wnbench.rl.hyperparams import RLHyperparams, algorithm_class, load_hyperparams
from wnbench.rl.norm_callback import NormCallback
from wnbench.rl.policies import policy_class_for
from wnbench.rl.scoring import EVAL_CURVE
from wnbench.rl.tasks import register_envs, validate_rl

__all__ = [
    "train_rl",
    "RunDiverged",
    "CallbackOutputFormat",
    "EvalCurveCallback",
    "StopBeforeDeadline",
    "normalized_auc",
]

LogFn = Callable[[dict[str, float], int], None]
EVAL_SEED_OFFSET = 1_000_003  # the evaluation env never shares a seed with a training env


class RunDiverged(FloatingPointError):
    """Parameters, a loss or the evaluation return became NaN/inf; ``step`` is the env step it was seen at."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class CallbackOutputFormat(KVWriter):
    """SB3 logger output that hands each dump's numeric values to ``log_fn(metrics, step)``.

    Also remembers the first non-finite value it sees (a loss gone NaN), so the run can stop.
    """

    def __init__(self, log_fn: LogFn | None) -> None:
        self.log_fn = log_fn
        self.first_nonfinite: tuple[str, int] | None = None

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        metrics: dict[str, float] = {}
        for key, value in key_values.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    value = value.item()
                else:
                    continue
            value = float(value)
            if not math.isfinite(value) and self.first_nonfinite is None:
                self.first_nonfinite = (key, step)
            metrics[key] = value
        if metrics and self.log_fn is not None:
            self.log_fn(metrics, step)

    def close(self) -> None:
        pass


def normalized_auc(steps: list[int], returns: list[float]) -> float:
    """Area under the eval curve divided by its step range: the curve's time-averaged return.

    In return units, so it reads like ``final_return`` but rewards learning early. NaN with < 2 points.
    """
    if len(steps) < 2 or steps[-1] == steps[0]:
        return float("nan")
    return float(np.trapezoid(returns, steps) / (steps[-1] - steps[0]))


def _nonfinite_parameter(model: Any) -> str | None:
    for name, param in model.policy.named_parameters():
        if not torch.isfinite(param).all():
            return name
    return None


class EvalCurveCallback(BaseCallback):
    """Evaluates the deterministic policy every ``eval_every`` env steps on a separate env.

    Records ``(step, mean return)`` points (one before training), logs them through the SB3 logger's
    output formats, checks for divergence after each evaluation, and times evaluation separately so
    training throughput excludes it.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_every: int,
        eval_episodes: int,
        writer: CallbackOutputFormat,
        log_fn: LogFn | None,
    ) -> None:
        super().__init__()
        self.eval_env, self.eval_every, self.eval_episodes = eval_env, eval_every, eval_episodes
        self.writer, self.log_fn = writer, log_fn
        self.steps: list[int] = []
        self.mean_returns: list[float] = []
        self.std_returns: list[float] = []
        self.eval_seconds = 0.0
        self.eval_seconds_each: list[float] = []
        self.eval_cpu_seconds = 0.0
        self._next_eval = 0

    def evaluate(self) -> None:
        start, cpu_start = time.perf_counter(), time.process_time()
        step = int(self.num_timesteps)
        if isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = self.model.get_vec_normalize_env().obs_rms.copy()
        returns, _ = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.eval_episodes,
            deterministic=True,
            return_episode_rewards=True,
        )
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.steps.append(step)
        self.mean_returns.append(mean)
        self.std_returns.append(std)
        self.eval_seconds_each.append(time.perf_counter() - start)
        self.eval_seconds += self.eval_seconds_each[-1]
        self.eval_cpu_seconds += time.process_time() - cpu_start
        if self.log_fn is not None:
            self.log_fn(
                {EVAL_CURVE: mean, "eval/std_return": std, "eval/episodes": float(len(returns))}, step
            )
        bad_param = _nonfinite_parameter(self.model)
        if bad_param is not None:
            raise RunDiverged(f"diverged: parameter '{bad_param}' is not finite at step {step}", step)
        if self.writer.first_nonfinite is not None:
            key, at = self.writer.first_nonfinite
            raise RunDiverged(f"diverged: logged value '{key}' is not finite at step {at}", at)
        if not math.isfinite(mean):
            raise RunDiverged(f"diverged: evaluation return is not finite at step {step}", step)

    def _on_training_start(self) -> None:
        if not self.steps:
            self.evaluate()  # the untrained policy: the curve's first point
        self._next_eval = self.eval_every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self.evaluate()
            while self._next_eval <= self.num_timesteps:
                self._next_eval += self.eval_every
        return True

    def _on_training_end(self) -> None:
        if self.steps[-1] != self.num_timesteps:
            self.evaluate()


class StopBeforeDeadline(BaseCallback):
    """Ends training early when the wall clock nears ``deadline`` (a ``time.time()`` value).

    Leaves room for the final evaluation: stops once less than ``margin_s`` plus three times the longest
    evaluation so far remains, so a run with a hard time limit ends with a curve instead of being killed.
    """

    def __init__(self, deadline: float, evaluator: EvalCurveCallback, margin_s: float = 10.0) -> None:
        super().__init__()
        self.deadline, self.evaluator, self.margin_s = deadline, evaluator, margin_s
        self.stopped_early = False

    def _on_step(self) -> bool:
        if self.n_calls % 64:
            return True
        longest_eval = max(self.evaluator.eval_seconds_each or [0.0])
        if time.time() + self.margin_s + 3 * longest_eval >= self.deadline:
            self.stopped_early = True
            return False
        return True


def _make_envs(env_id: str, hp: RLHyperparams, seed: int) -> tuple[VecEnv, VecEnv]:
    register_envs()
    train_env = make_vec_env(env_id, n_envs=hp.n_envs, seed=seed, vec_env_cls=DummyVecEnv)
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + EVAL_SEED_OFFSET, vec_env_cls=DummyVecEnv)
    if hp.normalize is not None:
        norm_kwargs = dict(hp.normalize)
        if "gamma" in hp.algo_kwargs and "gamma" not in norm_kwargs:
            norm_kwargs["gamma"] = hp.algo_kwargs["gamma"]
        train_env = VecNormalize(train_env, **norm_kwargs)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, norm_obs=norm_kwargs.get("norm_obs", True),
                                clip_obs=norm_kwargs.get("clip_obs", 10.0))  # fmt: skip
    return train_env, eval_env


def _action_noise(hp: RLHyperparams, env: VecEnv) -> Any:
    if hp.noise_type is None:
        return None
    dim = env.action_space.shape[-1]
    noise_cls = NormalActionNoise if hp.noise_type == "normal" else OrnsteinUhlenbeckActionNoise
    return noise_cls(mean=np.zeros(dim), sigma=hp.noise_std * np.ones(dim))


def train_rl(
    algo: str,
    env_id: str,
    norm: Any = "none",
    hyperparams: RLHyperparams | Mapping[str, Any] | None = None,
    seed: int = 0,
    total_steps: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int = 10,
    log_fn: LogFn | None = None,
    run_dir: str | Path | None = None,
    *,
    policy_kwargs: Mapping[str, Any] | None = None,
    final_evals: int = 3,
    ddi_steps: int = 256,
    deadline: float | None = None,
    diagnostics: bool = True,
) -> dict[str, Any]:
    """Train ``algo`` with ``norm`` on ``env_id`` and return the run record.

    ``hyperparams``: resolved :class:`RLHyperparams`, or zoo-style overrides of ``configs/rl/<algo>.yaml``.
    ``total_steps`` defaults to the config's ``n_timesteps``; ``eval_every`` to a twentieth of it.
    ``policy_kwargs`` adds norm-policy keywords (``norm_actor``, ``norm_critic``, ``bn_mode``...).
    ``final_return`` is the mean of the last ``final_evals`` evaluations. ``deadline`` (a ``time.time()``
    value) ends training early, with a final evaluation, when the clock nears it (``stopped_early``).
    ``diagnostics`` adds the mechanism probes of :mod:`wnbench.rl.diagnostics` (``diag_*`` arrays).
    Raises :class:`UserError` for an invalid spec (before anything trains) and :class:`RunDiverged` when
    training blows up.
    """
    torch.set_num_threads(1)
    hp = (
        hyperparams
        if isinstance(hyperparams, RLHyperparams)
        else load_hyperparams(algo, env_id, overrides=hyperparams)
    )
    extra_policy_kwargs = dict(policy_kwargs or {})
    full_policy_kwargs = {**hp.policy_kwargs, **extra_policy_kwargs}
    problems = validate_rl(algo, env_id, norm, full_policy_kwargs)
    if problems:
        raise UserError(f"invalid RL run {algo} on {env_id} with norm {norm!r}", problems=problems)
    total_steps = int(total_steps or hp.n_timesteps or 0)
    if total_steps <= 0:
        raise UserError(
            f"RL run {algo} on {env_id}: total_steps is not set and the config has no n_timesteps"
        )
    eval_every = int(eval_every or max(1, total_steps // 20))
    norm_obj = resolve_norm(norm)

    started = time.perf_counter()
    train_env, eval_env = _make_envs(env_id, hp, seed)
    algo_kwargs = dict(hp.algo_kwargs)
    noise = _action_noise(hp, train_env)
    if noise is not None:
        algo_kwargs["action_noise"] = noise
    model = algorithm_class(algo)(
        policy_class_for(algo), train_env, policy_kwargs={**full_policy_kwargs, "norm": norm_obj},
        seed=seed, device="cpu", verbose=0, **algo_kwargs,
    )  # fmt: skip
    writer = CallbackOutputFormat(log_fn)
    formats: list[KVWriter] = [writer]
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        formats.append(CSVOutputFormat(str(Path(run_dir) / "progress.csv")))
    model.set_logger(Logger(folder=str(run_dir) if run_dir else None, output_formats=formats))
    norm_callback = NormCallback(ddi_steps=ddi_steps)
    evaluator = EvalCurveCallback(eval_env, eval_every, eval_episodes, writer, log_fn)
    callbacks: list[BaseCallback] = [norm_callback, evaluator]
    diag = DiagnosticsCallback(evaluator, env_id, seed, log_fn=log_fn) if diagnostics else None
    if diag is not None:  # after the evaluator: it probes at each evaluation point (see rl/diagnostics.py)
        callbacks.append(diag)
    stopper = StopBeforeDeadline(deadline, evaluator) if deadline is not None else None
    if stopper is not None:
        callbacks.append(stopper)
    setup_s = time.perf_counter() - started
    try:
        learn_start, learn_cpu_start = time.perf_counter(), time.process_time()
        model.learn(total_timesteps=total_steps, callback=CallbackList(callbacks), log_interval=1)
        learn_s = time.perf_counter() - learn_start
        learn_cpu_s = time.process_time() - learn_cpu_start
    except (ValueError, RuntimeError) as exc:
        # NaN weights usually surface first as an error inside SB3/torch (e.g. a Categorical with NaN logits).
        bad_param = _nonfinite_parameter(model)
        if bad_param is None:
            raise
        step = int(model.num_timesteps)
        raise RunDiverged(
            f"diverged: parameter '{bad_param}' is not finite at step {step} ({type(exc).__name__})", step
        ) from exc
    finally:
        model.logger.close()
        train_env.close()
        eval_env.close()
    train_s = max(learn_s - evaluator.eval_seconds, 1e-9)
    train_cpu_s = max(learn_cpu_s - evaluator.eval_cpu_seconds, 1e-9)
    steps_done = int(model.num_timesteps)
    window = evaluator.mean_returns[-final_evals:]
    record = {
        "algo": algo.lower(),
        "env_id": env_id,
        "norm": norm_obj.label,
        "norm_options": norm_obj.options(),
        "seed": seed,
        "total_steps": steps_done,
        "stopped_early": bool(stopper is not None and stopper.stopped_early),
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "eval_steps": list(evaluator.steps),
        "eval_returns": list(evaluator.mean_returns),
        "eval_return_stds": list(evaluator.std_returns),
        "final_return": float(np.mean(window)),
        "auc_normalized": normalized_auc(evaluator.steps, evaluator.mean_returns),
        "steps_per_s": steps_done / train_s,
        "train_s": train_s,
        "steps_per_cpu_s": steps_done / train_cpu_s,
        "train_cpu_s": train_cpu_s,
        "eval_s": evaluator.eval_seconds,
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - started,
        "ddi_layers": norm_callback.ddi_layers,
        "policy_kwargs": {
            k: (v if isinstance(v, str | int | float | bool) else repr(v))
            for k, v in extra_policy_kwargs.items()
        },
        "hyperparams": hp.describe(),
        **(diag.record() if diag is not None else {}),
    }
    if log_fn is not None:
        log_fn(
            {
                "final_return": record["final_return"],
                "auc_normalized": record["auc_normalized"],
                "steps_per_s": record["steps_per_s"],
            },
            steps_done,
        )
    return record
