"""The one place that talks to Weights & Biases. Nothing else in wnbench imports ``wandb``.

    options = resolve_options(out_dir, enabled=True, project="wnbench")   # once, in the suite driver
    tracker = start_run(options, name=..., group=suite, job_type=claim, tags=[...], config={...})
    tracker.log({"train_loss": 0.3}, step=100)   # never raises; rl/gen code reaches it through ctx.log
    tracker.finish(exit_code=0)

Mode: ``WANDB_MODE`` when set; else online when an API key is known (``WANDB_API_KEY`` or ``~/.netrc``) and the
W&B host answers within ~2 s; else offline, with runs under ``OUT/wandb/`` for a later ``wandb sync``. ``--no-wandb``
(``enabled=False``) disables it. W&B never fails a run: an init or log error is kept in ``tracker.error``, printed
once, and the run goes on untracked; init is bounded by ``init_timeout_s`` (5 s), the end-of-run upload by
``finish_timeout_s`` (30 s, online only). Offline runs read back with
``wandb leet inspect --summary --json OUT/wandb/offline-run-*``.

Circuit breaker (online mode): the first online init that fails or times out trips a breaker shared by every run
process of the suite invocation -- a small file, ``OUT/wandb/wnbench-offline.json``, stamped with the
invocation's token (:func:`arm_breaker`, in the driver). That run and every later one log offline instead of
each waiting out its own timeout, so an outage costs the suite one timeout per concurrent run; the driver prints
one line with the ``wandb sync`` command (:func:`breaker_notice`). On a Ray cluster whose nodes do not share OUT,
each node has its own breaker (one timeout per node). The next ``wnbench run`` tries online again.
"""

from __future__ import annotations

import json
import netrc
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "PRELOAD_MODULES",
    "MetricLogger",
    "Tracker",
    "TrackingOptions",
    "arm_breaker",
    "breaker_notice",
    "prepare",
    "resolve_options",
    "start_run",
]

#: Where the circuit breaker lives, under ``TrackingOptions.dir`` (beside W&B's own run folders).
BREAKER_FILE = Path("wandb") / "wnbench-offline.json"

#: Modules a run process needs for tracking, worth importing once in the forkserver (wnbench.suite.worker):
#: wandb itself and what it imports lazily on wandb.init (wandb.sdk.launch, ~0.7 s) and on the first log
#: (OpenTelemetry, ~0.3 s). The forkserver skips any that fail to import: a wandb release that moves them
#: costs time, not correctness.
PRELOAD_MODULES = [
    "wandb",
    "wandb.sdk.launch",
    "requests",
    "opentelemetry.sdk.metrics",
    "opentelemetry.sdk.resources",
    "opentelemetry.sdk._logs",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
]

_MODE_ALIASES = {
    "dryrun": "offline",
    "run": "online",
    "disabled": "disabled",
    "online": "online",
    "offline": "offline",
}


@dataclass(frozen=True)
class TrackingOptions:
    """Resolved once in the suite driver and shipped (picklable) to every run process."""

    mode: str  # "online" | "offline" | "disabled"
    project: str = "wnbench"
    entity: str | None = None
    dir: str | None = None  # W&B writes under DIR/wandb/
    init_timeout_s: float = 5.0
    finish_timeout_s: float = (
        30.0  # online: how long finish() may wait for uploads (then the W&B run is "crashed")
    )
    reason: str = ""  # why this mode was chosen (shown by the CLI)
    breaker: str | None = None  # online: the circuit-breaker file of this suite invocation (arm_breaker)
    breaker_token: str = ""  # ...and the invocation's token, so a stale file from an earlier one is ignored


def arm_breaker(options: TrackingOptions) -> TrackingOptions:
    """In the suite driver, once per invocation: ``options`` with a fresh circuit breaker (online mode only).

    Clears a breaker an earlier invocation tripped: the outage may be over.
    """
    if options.mode != "online" or not options.dir:
        return options
    path = Path(options.dir) / BREAKER_FILE
    path.unlink(missing_ok=True)
    return replace(options, breaker=str(path), breaker_token=uuid.uuid4().hex)


def _tripped(options: TrackingOptions) -> dict[str, Any] | None:
    """What tripped this invocation's breaker (``reason``, ``run``), or ``None`` while it is closed."""
    if not options.breaker:
        return None
    try:
        state = json.loads(Path(options.breaker).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("token") == options.breaker_token else None


def _trip(options: TrackingOptions, reason: str, run_name: str) -> None:
    """Open the breaker for the rest of the invocation (atomically: readers see all of it or nothing)."""
    if not options.breaker:
        return
    path = Path(options.breaker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".wnbench-offline-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"token": options.breaker_token, "reason": reason, "run": run_name}, fh)
        os.replace(tmp, path)
    except (
        OSError
    ):  # cannot write it (a full disk): this run still goes offline, later ones find out themselves
        pass


def breaker_notice(options: TrackingOptions) -> str | None:
    """In the driver: the one line to print once the breaker has tripped, else ``None``."""
    state = _tripped(options)
    if state is None:
        return None
    sync_dir = Path(options.dir or ".") / "wandb"
    return (
        f"wnbench: W&B online init failed ({state.get('reason')}); the rest of this suite logs offline. "
        f"Upload later with: wandb sync {sync_dir}/offline-run-*"
    )


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(timeout_s: float) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_options(
    out_dir: str | os.PathLike | None,
    *,
    enabled: bool = True,
    project: str | None = None,
    entity: str | None = None,
    init_timeout_s: float = 5.0,
    probe_timeout_s: float = 2.0,
) -> TrackingOptions:
    """Pick the W&B mode for a suite: disabled / ``WANDB_MODE`` / online if logged in and reachable / offline."""
    project = project or os.environ.get("WANDB_PROJECT") or "wnbench"
    entity = entity or os.environ.get("WANDB_ENTITY") or None
    common = dict(
        project=project, entity=entity, dir=str(out_dir) if out_dir else None, init_timeout_s=init_timeout_s
    )
    if not enabled:
        return TrackingOptions(mode="disabled", reason="--no-wandb", **common)
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode:
        mode = _MODE_ALIASES.get(env_mode.lower(), "offline")
        return TrackingOptions(mode=mode, reason=f"WANDB_MODE={env_mode}", **common)
    if not _has_api_key():
        return TrackingOptions(mode="offline", reason="not logged in to W&B", **common)
    if not _reachable(probe_timeout_s):
        return TrackingOptions(mode="offline", reason="W&B host unreachable", **common)
    return TrackingOptions(mode="online", reason="logged in and reachable", **common)


def quiet_settings(**extra: Any) -> Any:
    """``wandb.Settings`` for a run this package writes: no console capture, no system stats or metadata, no git
    or code snapshot; ``extra`` adds timeouts."""
    import wandb

    return wandb.Settings(
        console="off",
        silent=True,
        x_disable_stats=True,
        x_disable_meta=True,
        disable_git=True,
        save_code=False,
        **extra,
    )


def prepare(options: TrackingOptions) -> None:
    """In the suite driver: start one W&B service that run processes share (``WANDB_SERVICE`` in their env).

    Saves each run process from spawning its own service (most of W&B's per-run start-up). Never raises.
    """
    if options.mode == "disabled":
        return
    try:
        import wandb

        wandb.setup()
    except Exception as err:  # noqa: BLE001 - runs then start their own service, or go untracked
        print(
            f"wnbench: warning: W&B service did not start ({err}); runs will start their own", file=sys.stderr
        )


class MetricLogger:
    """Anything with ``log(metrics, step)``: what SB3/Lightning adapters should write to (``RunContext`` is one)."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass
class Tracker(MetricLogger):
    """One W&B run, or a no-op when disabled or when W&B failed. Never raises."""

    options: TrackingOptions
    run: Any = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.run is not None

    def _fail(self, what: str, err: BaseException, *, announce: bool = True) -> None:
        self.error = f"W&B {what} failed: {type(err).__name__}: {err}".strip()
        if announce:
            print(f"wnbench: warning: {self.error}; the run goes on untracked", file=sys.stderr)
        self.run = None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(dict(metrics), step=step)
        except Exception as err:  # noqa: BLE001 - W&B must never fail a run
            self._fail("log", err)

    def log_image(self, name: str, path: str | os.PathLike, step: int | None = None) -> None:
        """Log an image file (a sample grid, a plot) under ``name``."""
        if self.run is None:
            return
        try:
            import wandb

            self.run.log({name: wandb.Image(str(path))}, step=step)
        except Exception as err:  # noqa: BLE001
            self._fail("log_image", err)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Set final figures in the W&B run summary."""
        if self.run is None:
            return
        try:
            self.run.summary.update(dict(metrics))
        except Exception as err:  # noqa: BLE001
            self._fail("summary", err)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        try:
            run.finish(exit_code=exit_code)
        except Exception as err:  # noqa: BLE001
            self._fail("finish", err)


def start_run(
    options: TrackingOptions,
    *,
    name: str,
    group: str | None = None,
    job_type: str | None = None,
    tags: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> Tracker:
    """Start a W&B run per ``options``; on any error return a disabled tracker holding the error.

    Online: offline instead once the invocation's breaker has tripped; a failed online init trips it and this
    run, too, starts offline (``tracker.info["offline_because"]`` says why).
    """
    run_args = dict(name=name, group=group, job_type=job_type, tags=tags, config=config)
    if options.mode == "online" and (state := _tripped(options)):
        tracker = _init(replace(options, mode="offline"), **run_args)
        tracker.info["offline_because"] = f"an earlier run's online init failed: {state.get('reason')}"
        return tracker
    tracker = _init(options, **run_args)
    if options.mode == "online" and tracker.error is not None:
        reason = tracker.error.removeprefix("W&B init failed: ").splitlines()[0]
        _trip(options, reason, name)
        print(f"wnbench: warning: W&B online init failed ({reason}); logging offline", file=sys.stderr)
        tracker = _init(replace(options, mode="offline"), **run_args)
        tracker.info["offline_because"] = f"online init failed: {reason}"
    return tracker


def _init(
    options: TrackingOptions,
    *,
    name: str,
    group: str | None,
    job_type: str | None,
    tags: Sequence[str],
    config: Mapping[str, Any] | None,
) -> Tracker:
    tracker = Tracker(options, info={"mode": options.mode})
    if options.mode == "disabled":
        return tracker
    try:
        import wandb

        if options.dir:
            os.makedirs(options.dir, exist_ok=True)
        settings = quiet_settings(
            init_timeout=options.init_timeout_s, finish_timeout=options.finish_timeout_s
        )
        tracker.run = wandb.init(
            project=options.project,
            entity=options.entity,
            name=name,
            group=group,
            job_type=job_type,
            tags=[t[:64] for t in tags],
            config=dict(config or {}),
            dir=options.dir,
            mode=options.mode,
            settings=settings,
            reinit="create_new",
        )
        tracker.info.update(id=tracker.run.id, dir=str(tracker.run.dir).removesuffix("/files"))
    except BaseException as err:  # noqa: BLE001 - includes wandb's timeout/usage errors and KeyboardInterrupt-free aborts
        if isinstance(err, KeyboardInterrupt):
            raise
        tracker._fail("init", err, announce=options.mode != "online")  # online: start_run says what follows
    return tracker
