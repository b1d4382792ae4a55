"""The pre-registration as the report prints it: the verdict rule in words with the registry's constants, one row
per hypothesis, and the commit that first holds the registry file's content."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from .registry import Claim, Hypothesis, Registry


def registry_commit(path: str | Path) -> str:
    """When this content of the file was first committed ("commit 489ed8f of 2026-12-06", the pre-registration) in
    a git checkout, else the file's modification date. By content (``git log --find-object`` on the file's blob),
    not by name: ``--follow`` crosses the swap of registry.yaml and registry_v3.yaml into v2's history."""
    path = Path(path)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()  # fmt: skip

    try:
        blob = git("hash-object", path.name)
        lines = git("log", "--format=%H %ad", "--date=short", f"--find-object={blob}").splitlines()
        if lines:
            commit, date = lines[-1].split()[:2]
            return f"commit {commit[:7]} of {date}"
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    try:
        mtime = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.UTC)
    except OSError:
        return ""
    return f"file dated {mtime.date().isoformat()} (not a committed version)"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()  # fmt: skip


def preregistration_line(path: str | Path) -> str:
    """``pre-registered at 489ed8f (2026-12-06 14:59 UTC)``, and when the registry lists amendments ``; amended
    2026-12-06 (2 amendments, content at ae48f8d)``.

    The pre-registration is the first commit in which a registry file of this folder (any ``registry*.yaml``, so
    the swap of registry.yaml and registry_v3.yaml does not hide it) holds this file's ``version``; the content
    commit is the first that holds the file's current bytes (:func:`registry_commit`). Outside a git checkout, or
    when the history lacks them, the line says so instead of naming a commit."""
    import yaml

    path = Path(path)
    try:
        current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ""
    version, amendments = current.get("version"), current.get("amendments") or []
    prereg = None
    try:
        prefix = _git(path.parent, "rev-parse", "--show-prefix")
        log = _git(path.parent, "log", "--reverse", "--format=%H %ct", "--", "registry*.yaml").splitlines()
        for line in log:
            commit, stamp = line.split()
            names = _git(path.parent, "ls-tree", "--name-only", commit, "--", ".").splitlines()
            for name in (n for n in names if Path(n).name.startswith("registry") and n.endswith(".yaml")):
                try:
                    old = (
                        yaml.safe_load(_git(path.parent, "show", f"{commit}:{prefix}{Path(name).name}")) or {}
                    )
                except (subprocess.SubprocessError, yaml.YAMLError):
                    continue
                if isinstance(old, dict) and old.get("version") == version:
                    prereg = (commit, int(stamp))
                    break
            if prereg:
                break
    except (OSError, subprocess.SubprocessError, ValueError):
        prereg = None
    if prereg is None:
        return f"registry version {version}: {registry_commit(path) or 'no commit found'}"
    when = datetime.datetime.fromtimestamp(prereg[1], tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"pre-registered at {prereg[0][:7]} ({when})"
    if amendments:
        content = registry_commit(path)
        at = content.split()[1] if content.startswith("commit ") else "an uncommitted file"
        last = max(str(a.get("date")) for a in amendments)
        n = len(amendments)
        text += f"; amended {last} ({n} amendment{'s' * (n != 1)}, content at {at})"
    return text


# -- the pre-registration as printed -----------------------------------------------------------------------------------
def _test_text(registry: Registry, claim: Claim, h: Hypothesis) -> str:
    """The region a hypothesis is judged by: ``±ROPE``, ``equivalence ±m`` or ``non-inferiority −m``."""
    if registry.method is not None and h.test == "non_inferiority":
        return f"non-inferiority −{registry.method.margins.non_inferiority:g}"
    if h.test == "equivalence":
        return f"equivalence ±{registry.rope(claim):g}"
    return f"±{registry.rope(claim):g}"


def preregistration_rows(registry: Registry) -> list[list[str]]:
    """One row per hypothesis (claim and statement on its first row), as the pre-registration table prints them."""
    rows = []
    for claim in registry.claims:
        for i, h in enumerate(claim.hypotheses):
            filters = {**(claim.cells or {}), **(h.cells or {})} if i == 0 or h.cells else {}
            where = "; ".join(f"{k} in {{{', '.join(v)}}}" for k, v in filters.items())
            rows.append(
                [
                    claim.id if i == 0 else "",
                    claim.statement if i == 0 else "",
                    ("**" + h.name + "**") if i == 0 else h.name,
                    h.x.text,
                    h.y.text,
                    h.family,
                    (h.metric or claim.metric) if i == 0 or h.metric else "″",
                    _test_text(registry, claim, h),
                    ", ".join(claim.suites) if i == 0 else "",
                    where,
                ]
            )
    return rows


PREREGISTRATION_HEADER = ["claim", "statement", "hypothesis (first = headline)", "X arms", "Y arms", "family",
                          "metric", "region (P)", "suites", "cells"]  # fmt: skip


def preregistration_text(registry: Registry) -> str:
    """The verdict rule in words, with the registry's constants, version, date and commit."""
    committed = (preregistration_line(registry.source) if registry.method is not None else
                 registry_commit(registry.source)) if registry.source else ""  # fmt: skip
    identity = (f"Registry {registry.identity}" + (f" ({committed})" if committed else "") + ". "
                if registry.identity else "")  # fmt: skip
    if registry.method is not None:
        return identity + _v3_text(registry)
    d = registry.defaults
    return identity + (
        "Verdict rule, fixed before any record is read and amended once, on 2026-12-03, after v2 records had been "
        "read (until then cells weighed equally and the bootstrap drew cells, then runs; that figure is printed "
        "beside every headline where a task holds several cells): "
        f"P(X > Y) per cell, averaged over each task's cells "
        f"and then over tasks, {d.confidence:.0%} family-wise intervals from a multi-stage bootstrap ({d.reps} "
        f"resamples: tasks, then cells inside each drawn task, then runs), Holm-Bonferroni step-down within each family over the hypotheses that have data. *Equivalent* "
        f"when the interval lies inside 0.5 ± ROPE; else *supported* when Holm rejects P = 0.5 with the interval "
        f"above 0.5, *contradicted* below; else *inconclusive*. *Insufficient data* with fewer than "
        f"{d.min_cells} cells that have at least {d.min_runs} scored runs on each side. Every scored run counts "
        "(no trimming to equal run counts); a diverged run scores as the worst value of its cell."
    )


def _v3_text(registry: Registry) -> str:
    m = registry.method
    assert m is not None
    gate = registry.peer_gate
    amended = (f" Amendments: {'; '.join(f'{a.date}: {a.change} ({a.reason})' for a in registry.amendments)}."
               if registry.amendments else " No amendments.")  # fmt: skip
    peer = (
        f" Peer gate: each cell's baseline against a published figure (at peer: median normalized score ≥ "
        f"{gate.level:g}); headlines use cells graded {' and '.join(gate.headline_cells)} (marked), never below "
        "peer."
        if gate is not None
        else ""
    )
    return (
        f"Decider ({m.decider}): per cell P(X > Y) from each arm's runs (at least {m.min_runs} scored runs per "
        "side); per task the mean over its cells; over tasks the mean of the task estimates, decided by the exact "
        "sign-flip test with its subset-means interval; Holm-Bonferroni step-down within each family at "
        f"family-wise {m.confidence:.0%}. *Supported* / *contradicted*: the interval at the Holm level clears "
        f"0.5 ± {m.margins.equivalence:g}; *equivalent*: inside it; non-inferiority: the lower bound above "
        f"0.5 − {m.margins.non_inferiority:g}; else *inconclusive*. *Insufficient*: fewer than {m.min_tasks} "
        "tasks, or too few for the exact test to reach its Holm level (2 / 2^k above it). Arm sets: a list pools "
        "its members present in a cell; `first of` takes the first member present; design arms ALGO:NORM pair "
        "(algorithm, norm) arms within a (task, budget)."
        + peer
        + " Under each headline: leave one task out, "
        "each alternative arm set, at-peer cells only, and without the v2 cells." + amended
    )
