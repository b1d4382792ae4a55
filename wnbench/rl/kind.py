"""The ``rl`` run kind: one SB3 agent on one gymnasium task with one norm, as a suite run.

A suite grid names ``tasks`` (gymnasium ids), ``algos`` (ppo, a2c, dqn, sac, td3, crossq, recurrentppo) and
``norms``; ``budget.steps`` is the number of environment steps (default: the config's ``n_timesteps``).
Hyperparameters come from ``configs/rl/<algo>.yaml`` keyed by the task id (rl-baselines3-zoo values, identical
for every norm); :class:`Params` holds what a suite may change on top of them::

    params: {eval_every: 5000, eval_episodes: 5, net_arch: [64, 64]}
    sweep: {learning_rate: [1.0e-4, 3.0e-4, 1.0e-3]}     # claim C5

``learning_rate`` keeps the config's schedule shape: with ``lin_0.001`` in the config, ``learning_rate: 3e-3``
runs ``lin_0.003`` (linear decay from 3e-3), so a sweep changes only the scale; ``"lin_3e-3"`` asks for a linear
schedule explicitly.

The eval curve (``eval/mean_return`` every ``eval_every`` steps) and everything SB3's logger records go to
``ctx.log`` (the record's ``curves`` and W&B); the full RL record (hyperparameters and their source, eval
arrays) is written to ``run_dir/rl_record.json`` beside SB3's ``progress.csv``.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wnbench.errors import UserError
from wnbench.norms.kinds import BN_MODES
from wnbench.rl.hyperparams import algorithm_class, load_hyperparams, parse_zoo_expression
from wnbench.rl.tasks import ALGORITHMS, register_envs, validate_env_id, validate_rl
from wnbench.rl.train import RunDiverged, train_rl
from wnbench.suite.kinds import Diverged, RunContext, RunSpec

# Imported (and envs registered) at module level on purpose: the suite engine preloads a kind's module in its
# forkserver, so every run process starts with SB3, gymnasium and MinAtar's ids already loaded (~5 s per run saved).
register_envs()

__all__ = ["Params", "run", "validate", "hyperparam_overrides", "policy_overrides"]


class Params(BaseModel):
    """What a suite may set per RL run, on top of ``configs/rl/<algo>.yaml``."""

    model_config = ConfigDict(extra="forbid")

    eval_every: int | None = Field(
        None, ge=1, description="env steps between evaluations (default: a twentieth of the budget)"
    )
    eval_episodes: int = Field(10, ge=1, description="episodes per evaluation (deterministic policy)")
    final_evals: int = Field(3, ge=1, description="final_return = mean of the last this many evaluations")
    ddi_steps: int = Field(256, ge=1, description="random-rollout steps for WN data-dependent init")
    net_arch: list[int] | dict[str, list[int]] | None = Field(
        None, description="hidden widths ([64, 64] or {pi: [...], vf/qf: [...]}); default: the config's"
    )
    norm_actor: bool = Field(True, description="normalize the actor's hidden layers")
    norm_critic: bool = Field(True, description="normalize the critic's (or Q-network's) hidden layers")
    bn_mode: str = Field(
        "sb3", description=f"batch-statistics mode: {' | '.join(BN_MODES)} (see rl.batch_stats)"
    )
    learning_rate: float | str | None = Field(
        None, description="initial learning rate; keeps the config's schedule shape (lin_ stays linear)"
    )
    batch_size: int | None = Field(None, ge=1, description="minibatch size override")
    hyperparams: dict[str, Any] = Field(
        default_factory=dict, description="any other zoo-style override of the config (gamma, n_steps, ...)"
    )

    @field_validator("bn_mode")
    @classmethod
    def _bn_mode(cls, value: str) -> str:
        """One of the modes the norms define (:data:`wnbench.norms.kinds.BN_MODES`)."""
        if value not in BN_MODES:
            raise ValueError(f"must be one of {', '.join(BN_MODES)}, got {value!r}")
        return value

    @field_validator("learning_rate")
    @classmethod
    def _learning_rate(cls, value: float | str | None) -> float | str | None:
        """A positive number (YAML 1.1 reads ``1e-3`` as a string: parsed here) or ``lin_<positive number>``."""
        if value is None:
            return None
        text = str(value).strip()
        number = text[4:] if text.startswith("lin_") else text
        try:
            rate = float(number)
        except ValueError:
            raise ValueError(f"expected a number or 'lin_<number>', got {value!r}") from None
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"must be a positive finite number, got {value!r}")
        return text if text.startswith("lin_") else rate


def hyperparam_overrides(algo: str, task: str, params: Params) -> dict[str, Any]:
    """Zoo-style overrides of ``configs/rl/<algo>.yaml`` that ``params`` asks for."""
    overrides = dict(params.hyperparams)
    if params.learning_rate is not None:
        rate: Any = params.learning_rate
        if isinstance(rate, int | float):
            configured = load_hyperparams(algo, task).raw.get("learning_rate")
            if isinstance(configured, str) and configured.startswith("lin_"):
                rate = f"lin_{rate!r}"
        overrides["learning_rate"] = rate
    if params.batch_size is not None:
        overrides["batch_size"] = params.batch_size
    if params.net_arch is not None:
        given = overrides.get("policy_kwargs") or {}
        if isinstance(given, str):
            given = parse_zoo_expression(given)
        overrides["policy_kwargs"] = {**given, "net_arch": params.net_arch}
    return overrides


def policy_overrides(params: Params) -> dict[str, Any]:
    """Norm-policy keywords (where the norm goes, batch-statistics mode)."""
    extra = (
        {"bn_mode": params.bn_mode} if params.bn_mode != "sb3" else {}
    )  # else the norm's own bn_mode holds
    return {"norm_actor": params.norm_actor, "norm_critic": params.norm_critic, **extra}


#: validate_rl message head -> the spec field it is about.
_FIELD_OF = (
    ("algo", "algo"),
    ("env", "task"),
    ("norm", "norm"),
    ("policy for", "norm"),
    ("bn_mode", "params.bn_mode"),
)


def _field_message(message: str) -> str:
    for head, field_name in _FIELD_OF:
        if message.startswith(head):
            return f"{field_name}: {message}"
    return message


def _params_message(problem: str, params: Params) -> str:
    """A ``load_hyperparams`` problem (``"ppo.yaml:CartPole-v1: key: reason"``) led by the param it came from."""
    parts = problem.split(": ", 2)
    key = parts[1].split(" ")[0] if len(parts) == 3 else ""
    if key in params.hyperparams:
        return f"params.hyperparams.{key}: {problem}"
    if key in ("learning_rate", "batch_size"):
        return f"params.{key}: {problem}"
    if key.startswith("policy_kwargs") and params.net_arch is not None:
        return f"params.net_arch: {problem}"
    return f"params: {problem}"


def validate(spec: RunSpec) -> list[str]:
    """Everything that would stop this run before it trains, each message led by its field (nothing trains)."""
    params: Params = spec.params  # type: ignore[assignment]
    algo = spec.algo.lower()
    if algo not in ALGORITHMS or validate_env_id(spec.task):
        return [_field_message(m) for m in validate_rl(spec.algo, spec.task, spec.norm, build=False)]
    try:
        hp = load_hyperparams(algo, spec.task, overrides=hyperparam_overrides(algo, spec.task, params))
    except UserError as err:
        return [_params_message(problem, params) for problem in (err.problems or [str(err)])]
    except (ValueError, SyntaxError) as err:  # an unparsable hyperparams.policy_kwargs string
        return [f"params.hyperparams.policy_kwargs: {err}"]
    problems = [
        _field_message(m)
        for m in validate_rl(algo, spec.task, spec.norm, {**hp.policy_kwargs, **policy_overrides(params)})
    ]
    problems += _recurrent_bn_problems(algo, spec, hp)
    steps = spec.budget.steps or hp.n_timesteps
    if not steps:
        problems.append(
            f"params: no budget.steps and no n_timesteps for {spec.task} in configs/rl/{algo}.yaml"
        )
    return problems


def _recurrent_bn_problems(algo: str, spec: RunSpec, hp: Any) -> list[str]:
    """Recurrent BN in RecurrentPPO needs at least two sequences in every minibatch.

    sb3-contrib cuts each minibatch from the rollout buffer flattened env by env, so a minibatch of
    ``batch_size <= n_steps`` steps can lie inside one env's trajectory and, within one episode, hold a single
    sequence: each time step then has one sample and no batch statistics (the zoo's PendulumNoVel values,
    batch 128 of 1,024-step rollouts with 200-step episodes, fail at the first update). ``batch_size > n_steps``
    makes every minibatch span two envs.
    """
    if algo != "recurrentppo":
        return []
    from wnbench.norms import NormError
    from wnbench.rl.extractors import resolve_norm

    try:
        norm = resolve_norm(spec.norm)
    except (NormError, ValueError):
        return []  # validate_rl reports it
    if not norm.uses_batch_statistics:
        return []
    defaults = inspect.signature(algorithm_class(algo).__init__).parameters
    batch_size = hp.algo_kwargs.get("batch_size", defaults["batch_size"].default)
    n_steps = hp.algo_kwargs.get("n_steps", defaults["n_steps"].default)
    if batch_size > n_steps:
        return []
    return [
        f"norm: recurrent BN ('{norm.label}') in recurrentppo needs at least two sequences in every minibatch, "
        f"i.e. batch_size > n_steps, and {spec.task} has batch_size {batch_size}, n_steps {n_steps} "
        f"(configs/rl/recurrentppo.yaml): sb3-contrib cuts minibatches from one env's consecutive steps, so a "
        f"minibatch inside one episode is one sequence and a time step has no batch to normalize over"
    ]


def identity(spec: RunSpec) -> dict[str, Any]:
    """What the run reads from ``configs/rl/<algo>.yaml`` after overrides: part of the run id, so editing a
    config file invalidates the finished runs that used it (the engine's ``identity`` hook)."""
    algo = spec.algo.lower()
    if algo not in ALGORITHMS or validate_env_id(spec.task):
        return {}  # validate() reports the problem
    params: Params = spec.params  # type: ignore[assignment]
    try:
        hp = load_hyperparams(algo, spec.task, overrides=hyperparam_overrides(algo, spec.task, params))
    except (ValueError, SyntaxError):
        return {}  # validate() reports the problem with its field
    return {"hyperparams": _jsonable(hp.raw), "n_timesteps": hp.n_timesteps}


def _jsonable(value: Any) -> Any:
    """Record values as strict JSON (non-finite floats -> None, other objects -> repr)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return repr(value)


def run(spec: RunSpec, ctx: RunContext) -> dict[str, float]:
    """Train the agent, evaluating as it goes; return final figures as plain floats.

    ``final_return`` (mean of the last evaluations), ``auc_normalized`` (time-averaged eval return),
    throughput (``steps_per_s`` wall, ``steps_per_cpu_s`` CPU, training only) and timings. A run that nears
    its time limit stops early with a last evaluation (``stopped_early`` = 1, ``budget_fraction`` < 1).
    """
    params: Params = spec.params  # type: ignore[assignment]
    algo = spec.algo.lower()
    try:
        record = train_rl(
            algo,
            spec.task,
            norm=spec.norm,
            hyperparams=hyperparam_overrides(algo, spec.task, params),
            seed=spec.seed,
            total_steps=spec.budget.steps,
            eval_every=params.eval_every,
            eval_episodes=params.eval_episodes,
            log_fn=ctx.log,
            run_dir=ctx.run_dir,
            policy_kwargs=policy_overrides(params),
            final_evals=params.final_evals,
            ddi_steps=params.ddi_steps,
            deadline=ctx.deadline,
        )
    except RunDiverged as err:
        raise Diverged(err.step, str(err)) from err
    (ctx.run_dir / "rl_record.json").write_text(json.dumps(_jsonable(record), indent=1))
    budget = spec.budget.steps or record["total_steps"]
    return {
        "final_return": float(record["final_return"]),
        "auc_normalized": float(record["auc_normalized"]),
        "best_return": float(max(record["eval_returns"])),
        "steps_per_s": float(record["steps_per_s"]),
        "steps_per_cpu_s": float(record["steps_per_cpu_s"]),
        "train_s": float(record["train_s"]),
        "train_cpu_s": float(record["train_cpu_s"]),
        "eval_s": float(record["eval_s"]),
        "setup_s": float(record["setup_s"]),
        "run_wall_s": float(record["wall_s"]),
        "total_steps": float(record["total_steps"]),
        "budget_fraction": float(record["total_steps"]) / float(budget),
        "stopped_early": float(record["stopped_early"]),
        "ddi_layers": float(record["ddi_layers"]),
    }
