"""Run kinds: what a suite can run ("toy" now, "rl" and "gen" from their own packages), and the contract a kind keeps.

A kind is three things named by ``"module:attr"`` strings and imported only when a suite uses the kind (so a toy
suite never imports SB3 or Lightning):

``params``   a pydantic model of the kind's per-run parameters, ``model_config = ConfigDict(extra="forbid")``.
             The engine validates every grid point's parameters (config file < profile ``params`` < ``sweep``
             value < ``--set``) before any run starts and reports errors with their YAML path.
``validate`` optional ``validate(spec: RunSpec) -> list[str]``: checks that need the kind's knowledge (unknown
             gymnasium id with close matches, DQN on a continuous action space, ...). Start each message with the
             field it is about, as the spec names it -- ``"task: unknown gymnasium id 'CartPol-v1'; did you mean
             'CartPole-v1'?"``, ``"algo: ..."``, ``"norm: ..."``, ``"params.lr: ..."`` -- and the engine rewrites the
             field into its YAML path (``profiles.default.tasks[0]: ...``). Called once per distinct
             (task, algo, norm, params); must not train.
``run``      ``run(spec: RunSpec, ctx: RunContext) -> dict[str, float]``: train one run and return its final
             metrics. ``spec`` carries ``task``, ``algo``, ``norm`` (build it with ``spec.make_norm()``),
             ``seed``, ``params`` (the validated model) and ``budget.steps``. It runs in its own process with
             one torch thread, already seeded (``random``, ``numpy``, ``torch``) with ``spec.seed``.
             Use ``ctx.log(metrics, step)`` for learning curves (they go to W&B and into the record's
             ``curves``; an SB3 KVWriter or Lightning logger adapter should call it),
             ``ctx.check_finite(step, loss=..., module=model)`` after each update (a NaN/inf ends the run as
             ``diverged`` at that step; raising :class:`Diverged` yourself does the same), ``ctx.run_dir`` for
             artifacts, ``ctx.deadline``/``ctx.time_left()`` to stop gracefully before the hard time limit
             (``spec.budget.time_limit_s``; past it the process is killed and the run is ``timeout``). Any
             exception marks the run ``failed`` with its traceback; non-finite final metrics mark it ``diverged``.
             Return plain floats; the same spec must give the same metrics on the same CPU (determinism).
             ``ctx.details`` is a dict the run may fill with facts about itself that are not metrics
             (per-network norms, device, parameter counts); it lands in the record under ``details``
             (JSON-safe: non-finite floats become null, other objects their ``repr``), failed runs included.
``identity`` optional ``identity(spec: RunSpec) -> dict``: everything the run reads from outside its spec that
             changes its result -- typically the fully resolved hyperparameters after the kind merged its own
             config files (``configs/gen/vae.yaml``) with ``spec.params``. The JSON-able result is part of
             the run id (edit a config value and resume reruns the affected runs instead of keeping stale ones)
             and is stored in the record as ``config.resolved``. Called at suite load, once per distinct
             (task, algo, norm, params): it must be cheap, must not train, and must not depend on the seed.
             Return plain JSON data (a value whose ``repr`` holds a memory address is refused: it would give
             each process a different run id).
             A :class:`~wnbench.errors.UserError` it raises is reported like a ``validate`` message.
``scoring``  optional: a :class:`Scoring` in a module that imports quickly (no SB3 or Lightning): which final
             metrics grade a run and in which direction, and which one is the headline of a run's cell. The
             report (``wnbench report``) reads it to turn records into scores without importing the kind.

Register a kind with :func:`register_kind`. ``rl`` and ``gen`` are pre-registered at ``wnbench.rl.kind`` and
``wnbench.gen.kind`` (attributes ``Params``, ``run``, optional ``validate`` and ``identity``): creating that
module is all it takes. A kind module that fails to import is reported when the suite is loaded
(``run kind 'rl': importing wnbench.rl.kind failed: RuntimeError: ...``), before any run starts.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wnbench.errors import UserError

__all__ = [
    "Budget",
    "Diverged",
    "RunContext",
    "RunKind",
    "RunSpec",
    "Scoring",
    "available_kinds",
    "get_kind",
    "register_kind",
]


@dataclass(frozen=True)
class Scoring:
    """How a kind's records are graded: each graded final metric's better direction, and the headline metric of
    a record's cell (from its ``config``), which is what verdicts compare."""

    directions: Mapping[str, str]  # metric -> "max" | "min"
    primary: Callable[[Mapping[str, Any]], str]
    #: A record's arm label from its ``config`` when the arm is more than the norm (the generative kind's placement
    #: arms: ``spectral@discriminator``); ``None``: the canonical norm label.
    arm: Callable[[Mapping[str, Any]], str] | None = None
    #: ``params`` that are part of the arm, so reports compare them inside one cell instead of splitting cells.
    arm_params: frozenset[str] = frozenset()
    #: The arm a cell's published peer figure is for (RL: the rl-baselines3-zoo run is no-norm, CrossQ's is stock
    #: CrossQ), from a record's ``config``; ``None``: the kind has no peer figures, and reports show no peer table.
    peer_arm: Callable[[Mapping[str, Any]], str] | None = None


class Diverged(Exception):
    """Raised inside a run when its loss or parameters stop being finite; the engine records ``diverged``."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"diverged at step {step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    """Per-run budget: ``steps`` is part of the run's identity (it changes results); the time limit is not."""

    time_limit_s: float
    steps: int | None = None


@dataclass(frozen=True)
class RunSpec:
    """One fully resolved run: what ``run`` and ``validate`` receive. ``params`` is the kind's validated model."""

    kind: str
    task: str
    algo: str
    norm: dict[str, Any]  # {"name": "group", "groups": 4}: pass as make_norm(**spec.norm)
    seed: int
    params: BaseModel
    budget: Budget
    suite: str = ""
    claims: tuple[str, ...] = ()

    def make_norm(self):
        """The run's norm factory (``wnbench.norms.make_norm`` of ``self.norm``)."""
        from wnbench.norms import make_norm

        return make_norm(**self.norm)


@dataclass
class RunContext:
    """What the engine hands a run: where to write, how to log, when to stop."""

    run_id: str
    run_dir: Path
    seed: int
    deadline: float  # time.time() at which the process is killed
    tracker: Any = None  # a wnbench.tracking.Tracker (possibly disabled)
    curves: dict[str, dict[str, list]] = field(default_factory=dict)
    last_step: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # merged into the record under "details"

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar ``metrics`` at ``step``: appended to the record's curves and sent to W&B."""
        self.last_step = max(self.last_step, int(step))
        clean = {}
        for name, value in metrics.items():
            value = float(value)
            curve = self.curves.setdefault(name, {"step": [], "value": []})
            curve["step"].append(int(step))
            curve["value"].append(value)
            clean[name] = value
        if self.tracker is not None:
            self.tracker.log(clean, step=int(step))

    def check_finite(self, step: int, loss: Any = None, module: Any = None) -> None:
        """Raise :class:`Diverged` if ``loss`` (float or tensor) or any parameter of ``module`` is NaN/inf."""
        import torch

        if loss is not None:
            value = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(float(loss))
            if not bool(torch.isfinite(value).all()):
                raise Diverged(step, f"non-finite loss ({value.flatten()[0].item()})")
        if module is not None:
            for name, param in module.named_parameters():
                if not bool(torch.isfinite(param.detach()).all()):
                    raise Diverged(step, f"non-finite parameter '{name}'")

    def time_left(self) -> float:
        """Seconds until the hard time limit."""
        return self.deadline - time.time()


def finite_or_none(value: float) -> float | None:
    """JSON-safe metric: non-finite floats become ``None`` (records stay strict JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite floats -> ``None``, tuples -> lists, unknown objects -> ``repr``."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    try:  # numpy / torch scalars
        import numbers

        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return finite_or_none(float(value))
    except (TypeError, ValueError):
        pass
    return repr(value)


def _import_module(kind_name: str, module_name: str) -> Any:
    """Import a kind's module; any failure becomes a :class:`UserError` that names the kind and the cause."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UserError(
            f"run kind '{kind_name}' is not available: cannot import {module_name} ({err})"
        ) from err
    except Exception as err:  # noqa: BLE001 - a broken kind module is a clear error, not a traceback per run
        raise UserError(
            f"run kind '{kind_name}': importing {module_name} failed: {type(err).__name__}: {err}"
        ) from err


@dataclass
class RunKind:
    """A registered run kind: ``"module:attr"`` strings, imported on first use."""

    name: str
    params: str
    run: str
    validate: str | None = None
    identity: str | None = None
    scoring: str | None = None

    def _load(self, target: str, what: str) -> Any:
        module_name, _, attr = target.partition(":")
        module = _import_module(self.name, module_name)
        try:
            return getattr(module, attr)
        except AttributeError as err:
            raise UserError(
                f"run kind '{self.name}' is not available: {module_name} has no {what} '{attr}'"
            ) from err

    def _load_optional(self, target: str | None) -> Any:
        """An optional hook: ``None`` when not registered or when the module does not define it."""
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        return getattr(_import_module(self.name, module_name), attr, None)

    def params_model(self) -> type[BaseModel]:
        return self._load(self.params, "params model")

    def run_function(self) -> Callable[[RunSpec, RunContext], Mapping[str, float]]:
        return self._load(self.run, "run function")

    def validate_function(self) -> Callable[[RunSpec], list[str]] | None:
        return self._load_optional(self.validate)

    def identity_function(self) -> Callable[[RunSpec], dict[str, Any]] | None:
        return self._load_optional(self.identity)

    def scoring_object(self) -> Scoring | None:
        return self._load_optional(self.scoring)

    def module_names(self) -> list[str]:
        """Modules to preload in worker processes."""
        targets = (self.params, self.run, self.validate, self.identity)
        return sorted({t.partition(":")[0] for t in targets if t})


_KINDS: dict[str, RunKind] = {}


def register_kind(
    name: str,
    *,
    params: str,
    run: str,
    validate: str | None = None,
    identity: str | None = None,
    scoring: str | None = None,
) -> RunKind:
    """Make a run kind available to suites under ``name`` (targets are ``"package.module:attr"``)."""
    kind = RunKind(name, params, run, validate, identity, scoring)
    _KINDS[name] = kind
    return kind


def get_kind(name: str) -> RunKind:
    if name not in _KINDS:
        raise UserError(f"unknown run kind '{name}'; known: {', '.join(available_kinds())}")
    return _KINDS[name]


def available_kinds() -> list[str]:
    return list(_KINDS)


register_kind(
    "toy",
    params="wnbench.toy:ToyParams",
    run="wnbench.toy:run_toy",
    validate="wnbench.toy:validate_toy",
    scoring="wnbench.toy:SCORING",
)
register_kind(
    "rl",
    params="wnbench.rl.kind:Params",
    run="wnbench.rl.kind:run",
    validate="wnbench.rl.kind:validate",
    identity="wnbench.rl.kind:identity",
    scoring="wnbench.rl.scoring:SCORING",
)
register_kind(
    "gen",
    params="wnbench.gen.kind:Params",
    run="wnbench.gen.kind:run",
    validate="wnbench.gen.kind:validate",
    identity="wnbench.gen.kind:identity",
    scoring="wnbench.gen.scoring:SCORING",
)
