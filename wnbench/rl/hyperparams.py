"""Per-task hyperparameters in rl-baselines3-zoo's format (``configs/rl/<algo>.yaml``), resolved for SB3.

The YAML files are keyed by gymnasium id, as the zoo's ``hyperparams/*.yml`` are, and hold the same
zoo-style values. :func:`load_hyperparams` resolves them:

* ``lin_X`` (learning rate, clip range) -> a linear schedule from X to 0 over training;
* ``policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.ReLU)"`` -> a dict, parsed without ``eval``
  (only literals, ``dict(...)``, ``nn.<Name>`` and this suite's feature extractors are allowed);
* ``normalize: true`` or ``"{'norm_obs': True, 'norm_reward': False}"`` -> VecNormalize keywords;
* ``n_envs``, ``n_timesteps``, ``noise_type``/``noise_std`` -> separate fields (they configure the run,
  not the algorithm); ``train_freq: [1, "episode"]`` -> a tuple.

An env id without an entry gets SB3's defaults (any registered id is accepted). Unknown keys and bad
values raise :class:`~wnbench.errors.UserError` listing every problem with its file and key.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from wnbench.errors import UserError

__all__ = [
    "RLHyperparams",
    "CONFIG_DIR",
    "load_hyperparams",
    "linear_schedule",
    "parse_zoo_expression",
    "algorithm_class",
]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "rl"
_RUN_KEYS = {
    "n_envs",
    "n_timesteps",
    "normalize",
    "noise_type",
    "noise_std",
    "policy_kwargs",
    "policy_kwargs_override",
    "policy",
}
_UNSUPPORTED = {"env_wrapper", "frame_stack", "callback", "vec_env_wrapper", "replay_buffer_class"}


@dataclass
class RLHyperparams:
    """Resolved hyperparameters of one (algorithm, env id)."""

    algo: str
    env_id: str
    n_timesteps: int | None = None
    n_envs: int = 1
    normalize: dict[str, Any] | None = None
    noise_type: str | None = None
    noise_std: float = 0.1
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly view (schedules and classes as strings) for run records and W&B config."""
        return {"source": self.source, **{k: v for k, v in self.raw.items()}}


def linear_schedule(initial: float) -> Callable[[float], float]:
    """SB3 schedule going linearly from ``initial`` (progress_remaining=1) to 0."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    schedule.__qualname__ = f"lin_{initial}"
    return schedule


def _extractors() -> dict[str, Any]:
    from wnbench.rl.extractors import MinAtarCNN

    return {"MinAtarCNN": MinAtarCNN}


def parse_zoo_expression(text: str) -> Any:
    """Parse a zoo ``policy_kwargs``/``normalize`` string safely (literals, ``dict()``, ``nn.X``, extractors)."""
    tree = ast.parse(text.strip(), mode="eval")
    extractors = _extractors()

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = value(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.List | ast.Tuple):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
            and not node.args
        ):
            return {kw.arg: value(kw.value) for kw in node.keywords}
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("nn", "th.nn", "torch.nn")
        ):
            found = None if node.attr.startswith("_") else getattr(nn, node.attr, None)
            if isinstance(found, type) and issubclass(found, nn.Module):
                return found
            raise ValueError(f"nn.{node.attr} is not a torch.nn module class")
        if isinstance(node, ast.Name):
            if node.id in extractors:
                return extractors[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
        raise ValueError(f"unsupported expression {ast.unparse(node)!r}")

    return value(tree.body)


def algorithm_class(algo: str) -> type:
    """The SB3 / sb3-contrib algorithm class for a name."""
    from sb3_contrib import CrossQ, RecurrentPPO
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

    classes = {
        "ppo": PPO,
        "a2c": A2C,
        "dqn": DQN,
        "sac": SAC,
        "td3": TD3,
        "crossq": CrossQ,
        "recurrentppo": RecurrentPPO,
    }
    return classes[algo.lower()]


def _read_config(path: Path) -> dict[str, Any]:
    """The parsed config file (a fresh copy; parsed once per file version, since a suite's checks read it per run)."""
    stat = path.stat()
    return copy.deepcopy(_parse_config(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _parse_config(path_text: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    path = Path(path_text)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of env id -> hyperparameters")
    return data


def load_hyperparams(
    algo: str,
    env_id: str,
    overrides: Mapping[str, Any] | None = None,
    config_dir: str | Path | None = None,
) -> RLHyperparams:
    """Hyperparameters of ``algo`` on ``env_id`` from ``<config_dir>/<algo>.yaml`` plus ``overrides``.

    ``overrides`` use the same zoo-style keys and values (e.g. ``{"learning_rate": "lin_3e-4"}``);
    a ``policy_kwargs`` override is merged into the file's policy kwargs.
    """
    algo = algo.lower()
    path = Path(config_dir or CONFIG_DIR) / f"{algo}.yaml"
    entries = _read_config(path) if path.exists() else {}
    raw = dict(entries.get(env_id) or {})
    source = (
        f"{path.name}:{env_id}" if env_id in entries else f"SB3 defaults (no '{env_id}' entry in {path.name})"
    )
    overrides = dict(overrides or {})
    override_policy_kwargs = overrides.pop("policy_kwargs", None)
    raw.update(overrides)
    if overrides:
        source += f" + overrides {sorted(overrides)}"

    problems: list[str] = []
    where = f"{path.name}:{env_id}"
    hp = RLHyperparams(algo=algo, env_id=env_id, source=source)

    policy_kwargs: dict[str, Any] = {}
    for label, text in (
        ("policy_kwargs", raw.get("policy_kwargs")),
        ("policy_kwargs (override)", override_policy_kwargs),
    ):
        if text is None:
            continue
        try:
            parsed = parse_zoo_expression(text) if isinstance(text, str) else dict(text)
            if not isinstance(parsed, dict):
                raise ValueError("expected dict(...)")
            policy_kwargs.update(parsed)
        except (ValueError, SyntaxError) as exc:
            problems.append(f"{where}: {label}: {exc}")
    if override_policy_kwargs is not None:
        raw["policy_kwargs_override"] = str(override_policy_kwargs)
    net_arch = policy_kwargs.get("net_arch")
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):  # zoo's pre-1.8 form
        policy_kwargs["net_arch"] = net_arch[0]
    hp.policy_kwargs = policy_kwargs

    normalize = raw.get("normalize", False)
    if isinstance(normalize, str):
        try:
            normalize = parse_zoo_expression(normalize)
        except (ValueError, SyntaxError) as exc:
            problems.append(f"{where}: normalize: {exc}")
            normalize = False
    if normalize is True:
        hp.normalize = {}
    elif isinstance(normalize, dict):
        hp.normalize = dict(normalize)
    elif normalize not in (False, None):
        problems.append(f"{where}: normalize: expected true/false or a dict, got {normalize!r}")

    for key, cast in (("n_envs", int), ("n_timesteps", int)):
        if key in raw:
            try:
                setattr(hp, key, cast(float(raw[key])))
            except (TypeError, ValueError):
                problems.append(f"{where}: {key}: expected a number, got {raw[key]!r}")
    if hp.n_envs < 1:
        problems.append(f"{where}: n_envs: must be >= 1, got {hp.n_envs}")
    hp.noise_type = raw.get("noise_type")
    if hp.noise_type not in (None, "normal", "ornstein-uhlenbeck"):
        problems.append(
            f"{where}: noise_type: expected 'normal' or 'ornstein-uhlenbeck', got {hp.noise_type!r}"
        )
    hp.noise_std = float(raw.get("noise_std", 0.1))

    try:
        accepted = set(inspect.signature(algorithm_class(algo).__init__).parameters) - {
            "self",
            "policy",
            "env",
        }
    except KeyError:
        raise UserError(f"unknown algorithm '{algo}'") from None
    algo_kwargs: dict[str, Any] = {}
    for key, val in raw.items():
        if key in _RUN_KEYS:
            continue
        if key in _UNSUPPORTED:
            problems.append(f"{where}: {key}: not supported by wnbench (env wrappers are chosen by env id)")
            continue
        if key not in accepted:
            problems.append(f"{where}: {key}: not a {algorithm_class(algo).__name__} argument")
            continue
        if isinstance(val, str) and val.startswith("lin_"):
            try:
                val = linear_schedule(float(val[4:]))
            except ValueError:
                problems.append(f"{where}: {key}: bad schedule {val!r} (expected lin_<number>)")
                continue
        elif key == "train_freq" and isinstance(val, list):
            val = (int(val[0]), str(val[1]))
        algo_kwargs[key] = val
    hp.algo_kwargs = algo_kwargs
    hp.raw = {
        k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v)) for k, v in raw.items()
    }
    if problems:
        raise UserError(f"bad RL hyperparameters for {algo} on {env_id}", problems=problems)
    return hp
