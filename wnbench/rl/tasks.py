"""RL tasks by gymnasium id, the partially observed CartPole, and up-front validation of a run.

Any registered gymnasium id is accepted. :func:`register_envs` adds the suite's own ids (idempotent):

* ``wnbench/CartPoleNoVel-v1``: CartPole-v1 with the cart and pole velocities zeroed (as rl-zoo's
  ``MaskVelocityWrapper`` does), so only a policy with memory can balance well (claim C7);
* ``wnbench/PendulumNoVel-v1``: Pendulum-v1 without its angular velocity;
* ``MinAtar/*`` (the ids ``minatar.gym.register_envs`` registers; MinAtar is imported when a game is made).

:func:`validate_rl` returns one line per problem (a task whose package -- MinAtar, MuJoCo, Box2D -- is not installed,
with its install line; an unknown id with the closest registered ids; an algorithm that cannot act in the action
space; a norm a recurrent policy cannot take; a network the norm cannot be built into); the suite engine turns them
into an exit-2 error before anything trains.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import json
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "ALGORITHMS",
    "MaskVelocityWrapper",
    "register_envs",
    "make_cartpole_novel",
    "make_pendulum_novel",
    "env_spaces",
    "missing_package",
    "validate_env_id",
    "validate_rl",
]

#: Algorithm name -> the action spaces it can act in.
ALGORITHMS: dict[str, tuple[type[spaces.Space], ...]] = {
    "ppo": (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
    "a2c": (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
    "recurrentppo": (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
    "dqn": (spaces.Discrete,),
    "sac": (spaces.Box,),
    "td3": (spaces.Box,),
    "crossq": (spaces.Box,),
}


class MaskVelocityWrapper(gym.ObservationWrapper):
    """Zeroes the observation entries listed in ``masked`` (velocities), keeping the observation shape."""

    def __init__(self, env: gym.Env, masked: list[int]) -> None:
        super().__init__(env)
        self.mask = np.ones(env.observation_space.shape, dtype=env.observation_space.dtype)
        self.mask[masked] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self.mask


def make_cartpole_novel(**kwargs: Any) -> gym.Env:
    """CartPole-v1 observing only cart position and pole angle (velocities zeroed)."""
    return MaskVelocityWrapper(gym.make("CartPole-v1", **kwargs), masked=[1, 3])


def make_pendulum_novel(**kwargs: Any) -> gym.Env:
    """Pendulum-v1 observing cos and sin of the angle only (angular velocity zeroed)."""
    return MaskVelocityWrapper(gym.make("Pendulum-v1", **kwargs), masked=[2])


def register_envs() -> None:
    """Register the suite's ids and MinAtar's with gymnasium (safe to call repeatedly)."""
    if "wnbench/CartPoleNoVel-v1" not in gym.registry:
        gym.register("wnbench/CartPoleNoVel-v1", entry_point=make_cartpole_novel, reward_threshold=475.0)
    if "wnbench/PendulumNoVel-v1" not in gym.registry:
        gym.register("wnbench/PendulumNoVel-v1", entry_point=make_pendulum_novel)
    if not any(key.startswith("MinAtar/") for key in gym.registry) and package_installed("minatar"):
        _register_minatar()


#: MinAtar's games as ``minatar.gym.register_envs`` names them (v0: full action set, v1: the minimal one).
MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
#: MinAtar registers no time limit, so a policy that neither scores nor loses plays one episode forever (an untrained
#: greedy DQN in Seaquest that never dives hung an evaluation for 10+ minutes). ALE caps an episode at 108,000
#: frames, 27,000 agent steps at frame skip 4; MinAtar has no frame skip, and no game of it needs more than this.
MINATAR_MAX_EPISODE_STEPS = 10_000


def _register_minatar() -> None:
    """The ids and arguments ``minatar.gym.register_envs`` registers, made by :func:`make_minatar`, so that MinAtar
    is imported only when one of its games is made (importing it costs ~2 s: pyplot and seaborn); plus a time
    limit (``MINATAR_MAX_EPISODE_STEPS``), which MinAtar's registration lacks."""
    for game in MINATAR_GAMES:
        name = game.title().replace("_", "")
        for version, minimal in (("v0", False), ("v1", True)):
            gym.register(
                f"MinAtar/{name}-{version}",
                entry_point=make_minatar,
                kwargs={"game": game, "use_minimal_action_set": minimal},
                max_episode_steps=MINATAR_MAX_EPISODE_STEPS,
            )


def make_minatar(render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """``minatar.gym.BaseEnv(**kwargs)``, importing MinAtar without seaborn unless the frames are asked for as RGB.

    MinAtar imports seaborn (with pandas and scipy.stats: ~1.4 s, ``python -X importtime``) at module level and
    treats it as optional (it logs that rendering is unavailable); it uses it only to colour ``rgb_array`` frames.
    Training and validation never render, so they skip it; an ``rgb_array`` caller gets it as MinAtar would."""
    import logging
    import sys

    if "minatar.gym" not in sys.modules and "seaborn" not in sys.modules and render_mode != "rgb_array":
        sys.modules["seaborn"] = None  # type: ignore[assignment]  # makes `import seaborn` raise ImportError
        logging.disable(logging.WARNING)  # MinAtar's "Cannot import seaborn" line, which does not apply here
        try:
            import minatar.gym
        finally:
            logging.disable(logging.NOTSET)
            del sys.modules["seaborn"]
    import minatar.environment
    import minatar.gym

    if render_mode == "rgb_array" and not hasattr(minatar.gym, "sns"):
        import seaborn

        minatar.gym.sns = minatar.environment.sns = seaborn
    return minatar.gym.BaseEnv(render_mode=render_mode, **kwargs)


#: What an env needs beyond gymnasium itself -> (the module to find, what to call it, the install line). Checked by
#: :func:`missing_package` before anything is made, so a suite naming such a task is refused at validation.
PACKAGES: dict[str, tuple[str, str, str]] = {
    "minatar": ("minatar", "the minatar package", "pip install minatar"),
    "mujoco": ("mujoco", "the mujoco extra", 'pip install "gymnasium[mujoco]"'),
    "box2d": ("Box2D", "the box2d extra", 'pip install "gymnasium[box2d]"'),
}


def package_installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path; nothing is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module with no spec
        return False


def required_package(env_id: str) -> str | None:
    """The :data:`PACKAGES` key an env needs: ``minatar`` for ``MinAtar/*`` (registered without importing it),
    ``mujoco`` or ``box2d`` for gymnasium's MuJoCo and Box2D envs (by entry point); ``None`` for the rest."""
    if env_id.startswith("MinAtar/"):
        return "minatar"
    spec = gym.registry.get(env_id)
    entry = str(getattr(spec, "entry_point", "")) if spec is not None else ""
    return next((key for key in ("mujoco", "box2d") if f"envs.{key}." in entry), None)


def minatar_ids() -> list[str]:
    """The ids :func:`register_envs` registers for MinAtar (whether MinAtar is installed or not)."""
    return [
        f"MinAtar/{game.title().replace('_', '')}-{version}"
        for game in MINATAR_GAMES
        for version in ("v0", "v1")
    ]


def missing_package(env_id: str) -> str | None:
    """One problem line with the install command when ``env_id`` needs a package that is not installed, else
    ``None``."""
    key = required_package(env_id)
    if key is None:
        return None
    module, what, install = PACKAGES[key]
    if package_installed(module):
        return None
    if key == "minatar" and env_id not in minatar_ids():
        close = difflib.get_close_matches(env_id, minatar_ids(), n=3, cutoff=0.5)
        hint = (
            f"; closest MinAtar ids: {', '.join(close)}"
            if close
            else f"; MinAtar ids: {', '.join(minatar_ids())}"
        )
        return f"env '{env_id}': not a MinAtar id{hint} (and {what} is not installed: {install})"
    return f"env '{env_id}': needs {what}, which is not installed: {install}"


def validate_env_id(env_id: str) -> list[str]:
    """``[]`` when ``env_id`` is registered and what it needs is installed, else one problem: the install line
    (:func:`missing_package`), or the closest registered ids."""
    register_envs()
    missing = missing_package(env_id)
    if missing is not None:
        return [missing]
    if env_id in gym.registry:
        return []
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f"; closest registered ids: {', '.join(close)}" if close else ""
    return [f"env '{env_id}': not a registered gymnasium id{hint}"]


@functools.lru_cache(maxsize=256)
def env_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """Observation and action space of ``env_id`` (makes and closes one instance; cached per process)."""
    register_envs()
    env = gym.make(env_id)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def validate_rl(
    algo: str,
    env_id: str,
    norm: Any = "none",
    policy_kwargs: Mapping[str, Any] | None = None,
    *,
    build: bool = True,
) -> list[str]:
    """Everything that would make an RL run fail before it trains, one line per problem.

    Checks the algorithm name, the env id, the algorithm against the action space, the norm (name and
    options, recurrent capability), ``bn_mode``, ``critic_mode``, and — with ``build=True`` — that the
    policy's networks can be built with this norm and modes (e.g. group norm needs widths its group count
    divides; ``critic_mode`` needs SAC, TD3 or CrossQ and batch statistics).
    """
    from wnbench.norms import NormError  # local: keeps ``import wnbench.rl.tasks`` light

    problems: list[str] = []
    algo_key = str(algo).lower()
    if algo_key not in ALGORITHMS:
        close = difflib.get_close_matches(algo_key, list(ALGORITHMS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"algo '{algo}': unknown algorithm{hint}; known: {', '.join(ALGORITHMS)}")
    env_problems = validate_env_id(env_id)
    problems += env_problems

    policy_kwargs = dict(policy_kwargs or {})
    from wnbench.rl.batch_stats import BN_MODES, CRITIC_MODES
    from wnbench.rl.extractors import resolve_norm

    resolved = None
    try:
        resolved = resolve_norm(norm)
    except (NormError, ValueError) as exc:
        problems.append(f"norm: {exc}")
    bn_mode = policy_kwargs.get("bn_mode") or "sb3"
    if bn_mode not in BN_MODES:
        problems.append(f"bn_mode '{bn_mode}': must be one of {', '.join(BN_MODES)}")
    critic_mode = policy_kwargs.get("critic_mode") or "sb3"
    if critic_mode not in CRITIC_MODES:
        problems.append(f"critic_mode '{critic_mode}': must be one of {', '.join(CRITIC_MODES)}")

    if resolved is not None and algo_key == "recurrentppo" and not resolved.supports_recurrent:
        why = "it has no recurrent form" + (
            " (recurrent batch norm is 'batch')" if resolved.uses_batch_statistics else ""
        )
        from wnbench.norms import recurrent_norms

        problems.append(
            f"norm '{resolved.label}' cannot go into recurrentppo's LSTM: {why}; "
            f"recurrent-capable norms: {', '.join(recurrent_norms())}"
        )
    t_max = resolved.options().get("t_max", 100) if resolved is not None else 100
    if t_max != 100:  # recurrent BN's per-time-step statistics: no RL algorithm here can use them
        where = (
            "RecurrentPPO feeds its LSTM one step per call, so its recurrent BN shares statistics over time"
            if algo_key == "recurrentppo"
            else f"it sets recurrent BN's per-time-step statistics and {algo_key} has no LSTM"
        )
        problems.append(f"norm '{resolved.label}': option 't_max' has no effect here: {where}; remove it")
    if env_problems or algo_key not in ALGORITHMS:
        return problems

    try:
        observation_space, action_space = env_spaces(env_id)
    except Exception as exc:  # an id can be registered but unmakeable (missing optional dependency)
        extra = missing_extra(env_id, exc)
        if extra is not None:  # found on the path but failing to import (a broken install)
            _, what, install = PACKAGES[extra]
            return problems + [f"env '{env_id}': needs {what}, which is not installed: {install}"]
        return problems + [f"env '{env_id}': cannot be created: {type(exc).__name__}: {exc}"]
    if not isinstance(action_space, ALGORITHMS[algo_key]):
        accepted = ", ".join(s.__name__ for s in ALGORITHMS[algo_key])
        problems.append(
            f"algo '{algo_key}' cannot act in env '{env_id}': its action space is {type(action_space).__name__} "
            f"({action_space}); {algo_key} needs {accepted}"
        )
    if build and not problems:
        build_kwargs = policy_kwargs if "group" in resolved.label else _narrowed(policy_kwargs)
        key = json.dumps(
            [algo_key, _signature(observation_space), _signature(action_space), resolved.label, build_kwargs],
            sort_keys=True, default=repr,
        )  # fmt: skip
        problems += _cached_build_problems(
            key, algo_key, observation_space, action_space, resolved, build_kwargs
        )
    return problems


def missing_extra(env_id: str, exc: BaseException) -> str | None:
    """The :data:`PACKAGES` key an env needs when ``exc`` says its dependency is missing (else None)."""
    from gymnasium.error import DependencyNotInstalled

    if not isinstance(exc, DependencyNotInstalled | ImportError):
        return None
    return required_package(env_id)


_BUILT: dict[str, list[str]] = {}

#: Hidden width the validation build uses for norms whose construction does not depend on widths.
_CHECK_WIDTH = 8


def _signature(space: spaces.Space) -> list[Any]:
    """What a policy's structure depends on in a space: its type and rank (image or vector observations; discrete
    or continuous actions), not its sizes. Envs with one signature (the MinAtar games, MuJoCo tasks, CartPole and
    Acrobot) share one validation build."""
    return [type(space).__name__, len(space.shape or ())]


def _narrowed(policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``net_arch`` with every width capped at :data:`_CHECK_WIDTH`: layer count, placement and norm are what
    the build checks, and only group norm's divisibility depends on widths (those builds keep theirs). A CrossQ
    MuJoCo critic is 2048 wide; building 388 such policies was most of a full-profile dry run."""
    out = dict(policy_kwargs)
    arch = out.get("net_arch")
    if isinstance(arch, list | tuple) and all(isinstance(w, int) for w in arch):
        out["net_arch"] = [min(w, _CHECK_WIDTH) if w > 0 else w for w in arch]
    elif isinstance(arch, Mapping) and all(
        isinstance(v, list | tuple) and all(isinstance(w, int) for w in v) for v in arch.values()
    ):
        out["net_arch"] = {k: [min(w, _CHECK_WIDTH) if w > 0 else w for w in v] for k, v in arch.items()}
    return out


def _cached_build_problems(key: str, *args: Any) -> list[str]:
    """:func:`_build_problems` once per (algo, env, norm, policy kwargs): a sweep over learning rates or seeds
    builds the same networks, and building policies dominates a large dry run's time (figures:
    docs/measurements/docstring-figures-2026-12.md)."""
    if key not in _BUILT:
        _BUILT[key] = _build_problems(*args)
    return list(_BUILT[key])


def _build_problems(
    algo: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    norm: Any,
    policy_kwargs: dict[str, Any],
) -> list[str]:
    """Build the policy once (no env, no training) and report what the norm or kwargs refused."""
    from wnbench.norms import NormError
    from wnbench.rl.policies import policy_class_for

    policy_cls = policy_class_for(algo)
    kwargs = {**policy_kwargs, "norm": norm}
    if "optimizer_class" not in kwargs and "optimizer_kwargs" not in kwargs:
        # the default Adam: nothing to check, and torch's first optimizer imports torch._dynamo (~1 s)
        kwargs["optimizer_class"] = _NoOptimizer
    try:
        with _structure_only():
            policy_cls(observation_space, action_space, lambda _: 1e-3, **kwargs)
    except (NormError, ValueError, TypeError) as exc:
        return [f"policy for {algo} with norm '{getattr(norm, 'label', norm)}': {exc}"]
    return []


_INITS = ("orthogonal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "uniform_",
          "normal_", "trunc_normal_")  # fmt: skip


@contextlib.contextmanager
def _structure_only() -> Iterator[None]:
    """Build networks without filling their weights: validation checks structure (widths, norms, placements), and
    SB3's orthogonal init of wide layers was most of a dry run's time (a CrossQ MuJoCo critic, 2048 wide: 0.6 s of
    QR per policy). The weights are left as allocated; the policy is discarded."""
    import torch.nn.init as init

    saved = {name: getattr(init, name) for name in _INITS if hasattr(init, name)}
    try:
        for name in saved:
            setattr(init, name, _keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def _keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


class _NoOptimizer:
    """Stands in for the default optimizer in a structure-only build (the policy is discarded)."""

    def __init__(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.param_groups: list[dict[str, Any]] = []
