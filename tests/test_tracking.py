"""wnbench.tracking: mode resolution and a tracker that never fails the run it tracks."""

from __future__ import annotations

import pytest

from wnbench.tracking import Tracker, TrackingOptions, resolve_options, start_run


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    return monkeypatch


def test_mode_is_disabled_by_flag_then_follows_wandb_mode_then_login(no_wandb_env, tmp_path):
    assert resolve_options(tmp_path, enabled=False).mode == "disabled"
    assert resolve_options(tmp_path).mode == "offline"  # not logged in
    assert resolve_options(tmp_path).reason == "not logged in to W&B"
    no_wandb_env.setenv("WANDB_MODE", "disabled")
    assert resolve_options(tmp_path).mode == "disabled"
    no_wandb_env.setenv("WANDB_MODE", "dryrun")
    assert resolve_options(tmp_path).mode == "offline"
    no_wandb_env.delenv("WANDB_MODE")
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    no_wandb_env.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # logged in, but the host does not answer
    options = resolve_options(tmp_path, project="p", entity="e", probe_timeout_s=0.5)
    assert (options.mode, options.reason, options.project, options.entity) == (
        "offline",
        "W&B host unreachable",
        "p",
        "e",
    )


def test_tracker_swallows_wandb_errors_and_keeps_the_first(capsys):
    class BrokenRun:
        def log(self, *args, **kwargs):
            raise ConnectionError("socket closed")

        def finish(self, *args, **kwargs):
            raise AssertionError("finish must not be called on a tracker that already failed")

    tracker = Tracker(TrackingOptions(mode="online"), run=BrokenRun())
    tracker.log({"loss": 1.0}, step=1)
    tracker.log({"loss": 0.5}, step=2)
    tracker.summary({"final": 1.0})
    tracker.finish()
    assert tracker.error == "W&B log failed: ConnectionError: socket closed"
    assert not tracker.active
    assert "the run goes on untracked" in capsys.readouterr().err


def test_disabled_tracking_starts_nothing():
    tracker = start_run(TrackingOptions(mode="disabled"), name="x")
    tracker.log({"a": 1.0}, step=0)
    assert not tracker.active and tracker.error is None
