"""The claims registry: each claim's hypotheses (arm sets), family, metric, equivalence region and suites, as
data (``registry.yaml``). The report is generic analysis over it and prints it as the pre-registration.

    registry = load_registry()           # or load_registry(path) for another file
    registry.claim("C1").hypotheses[0]   # Hypothesis(name="WN > BN", x=("weight", ...), ...)
    arm = registry.arm_of("batch_renorm[warmup_steps=1000]", ["batch", "batch_renorm"])   # "batch_renorm"

Adding a claim means adding an entry; ``analysis`` names the code that measures it (``comparison`` for
norm-vs-norm scores, or a claim's own measurement: ``timing``, ``noise``, ``ddi``, ``lr_robustness``), and the
entry says how it is shown (``figures``, ``tables``, ``how_to_measure``, ``wandb``): no code names a claim id.
The registry is the only list of claims; ``WNBENCH_REGISTRY`` (a path) replaces the built-in file everywhere
(suite validation, the report, W&B sections). Each top-level section is one pydantic model (``extra="forbid"``),
so a new section is one model and one field of :class:`Registry`.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wnbench.errors import UserError

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")
#: Environment variable naming another registry file to use wherever no path is given.
REGISTRY_ENV = "WNBENCH_REGISTRY"
ANALYSES = ("comparison", "timing", "noise", "ddi", "lr_robustness")
#: Old or alternative spellings of a norm's base name -> the registry's.
ALIASES = {"weight_meanonly": "weight+meanonly"}


class Defaults(BaseModel):
    """The verdict rule's constants, each claim may override ``rope``, ``min_runs`` and ``min_cells``."""

    model_config = ConfigDict(extra="forbid")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    rope: float = Field(0.07, ge=0, lt=0.5)
    min_runs: int = Field(3, ge=1)
    min_cells: int = Field(2, ge=1)
    reps: int = Field(2000, ge=100)


#: Figures a claim's section can show (drawn by :func:`wnbench.report.render.make_figures`, in the order listed).
FigureKind = Literal[
    "curves", "diagnostics", "iqm", "profiles", "throughput", "noise", "batch_sweep", "lr", "samples"
]
#: Extra tables a claim's section can show after its analysis' own.
TableKind = Literal["seed_spread"]
#: In ``wandb.curves``: every mechanism diagnostic a run logs (``diag/...``, wnbench.rl.diagnostics).
ALL_DIAGNOSTICS = "diag/*"


class WandbPanels(BaseModel):
    """What a claim's W&B report section draws per cell: curves against steps, and final metrics as bars."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    curves: tuple[str, ...] = ()
    finals: tuple[str, ...] = ()


class Hypothesis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    x: tuple[str, ...]
    y: tuple[str, ...]
    family: str
    metric: str | None = None  # a claim-specific measurement's variant (C3: "throughput")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^C\d+(-[A-Za-z0-9]+)*$")
    statement: str
    analysis: Literal["comparison", "timing", "noise", "ddi", "lr_robustness"]
    suites: tuple[str, ...]
    metric: str
    hypotheses: tuple[Hypothesis, ...] = Field(min_length=1)
    rope: float | None = Field(None, ge=0, lt=0.5)
    min_runs: int | None = Field(None, ge=1)
    min_cells: int | None = Field(None, ge=1)
    tolerance: float | None = Field(None, gt=0, lt=1)
    #: lr_robustness: a good rate's normalized score is also at least this share of the cell's best median
    floor: float | None = Field(None, ge=0, le=1)
    #: keep only cells whose config field has one of these values
    cells: dict[str, tuple[str, ...]] | None = None
    note: str = ""  # printed in the claim's section
    # -- how the claim is shown (presentation, not part of the verdict rule) --
    figures: tuple[FigureKind, ...] = ()
    tables: tuple[TableKind, ...] = ()
    #: printed in the claim's section when no input measures it
    how_to_measure: str = ""
    #: the claim's W&B report section; none without it
    wandb: WandbPanels | None = None

    @property
    def headline(self) -> Hypothesis:
        return self.hypotheses[0]


class Registry(BaseModel):
    """The whole file: its identity (``version``, ``date``), the rule's defaults, named arm sets, the claims."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int | None = Field(None, ge=1)
    date: datetime.date | None = None
    defaults: Defaults = Defaults()
    arm_sets: dict[str, tuple[str, ...]] = {}
    claims: tuple[Claim, ...]

    @field_validator("claims")
    @classmethod
    def _unique(cls, claims: tuple[Claim, ...]) -> tuple[Claim, ...]:
        ids = [c.id for c in claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"claim ids repeat: {', '.join(dupes)}")
        return claims

    def claim(self, claim_id: str) -> Claim:
        """The entry with this id (``KeyError`` when there is none)."""
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def rope(self, claim: Claim) -> float:
        return self.defaults.rope if claim.rope is None else claim.rope

    def min_runs(self, claim: Claim) -> int:
        return self.defaults.min_runs if claim.min_runs is None else claim.min_runs

    def min_cells(self, claim: Claim) -> int:
        return self.defaults.min_cells if claim.min_cells is None else claim.min_cells

    @property
    def ids(self) -> list[str]:
        """The registered claim ids, in registry order."""
        return [c.id for c in self.claims]

    @property
    def identity(self) -> str:
        """ "version 2, dated 2026-12-03" as far as the file says; empty when it names neither."""
        parts = [f"version {self.version}" if self.version is not None else "",
                 f"dated {self.date.isoformat()}" if self.date is not None else ""]  # fmt: skip
        return ", ".join(p for p in parts if p)

    @property
    def alpha(self) -> float:
        return 1.0 - self.defaults.confidence

    def arms(self) -> list[str]:
        """Every arm named anywhere in the registry."""
        return list(dict.fromkeys(a for c in self.claims for h in c.hypotheses for a in (*h.x, *h.y)))


def _expand_sets(raw: dict[str, Any]) -> dict[str, Any]:
    """``x: WN`` -> the arm set's list (a named set from ``arm_sets``, or a list as written)."""
    sets = raw.get("arm_sets") or {}
    for claim in raw.get("claims") or []:
        for hyp in claim.get("hypotheses") or [] if isinstance(claim, dict) else []:
            for side in ("x", "y"):
                if isinstance(hyp, dict) and isinstance(hyp.get(side), str):
                    name = hyp[side]
                    if name not in sets:
                        raise UserError(
                            f"claims registry: {claim.get('id', '?')}: {side}: unknown arm set {name!r}; "
                            f"known: {', '.join(sets)} (or give a list of norm labels)"
                        )
                    hyp[side] = list(sets[name])
    return raw


def registry_path(path: str | Path | None = None) -> Path:
    """The registry file to read: ``path`` if given, else ``$WNBENCH_REGISTRY`` if set, else the built-in one."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(REGISTRY_ENV) or REGISTRY_FILE)


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate the registry (:func:`registry_path` picks the file); a bad file is a :class:`UserError`
    listing every problem (exit 2). Cached per file."""
    return _load(registry_path(path))


@functools.cache
def _load(path: Path) -> Registry:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"claims registry {path}: cannot read it ({err})") from err
    if not isinstance(raw, dict):
        raise UserError(f"claims registry {path}: expected a mapping with defaults, arm_sets, claims")
    try:
        return Registry(**_expand_sets(raw))
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise UserError(f"claims registry {path}: invalid", problems) from err


# -- arms ------------------------------------------------------------------------------------------------------------
def parse_label(label: str) -> tuple[str, frozenset[str]]:
    """``"batch_renorm[warmup_steps=1000]"`` -> ("batch_renorm", {"warmup_steps=1000"}), aliases resolved."""
    base, _, rest = label.partition("[")
    options = frozenset(o.strip() for o in rest.rstrip("]").split(",") if o.strip()) if rest else frozenset()
    base = base.strip()
    if base.startswith("none+"):
        base = base.removeprefix("none+")
    return ALIASES.get(base, base), options


def canonical(label: str) -> str:
    """A label's one spelling: aliases resolved, options sorted."""
    base, options = parse_label(label)
    return base + (f"[{','.join(sorted(options))}]" if options else "")


def arm_of(label: str, arms: Iterable[str]) -> str | None:
    """The most specific arm matching a record's norm label: same base name, the arm's options a subset of the
    label's; ``None`` when no arm matches."""
    base, options = parse_label(label)
    best, best_size = None, -1
    for arm in arms:
        arm_base, arm_options = parse_label(arm)
        if arm_base == base and arm_options <= options and len(arm_options) > best_size:
            best, best_size = arm, len(arm_options)
    return best


# -- the pre-registration as printed -----------------------------------------------------------------------------------
def preregistration_rows(registry: Registry) -> list[list[str]]:
    """One row per hypothesis (claim and statement on its first row), as the pre-registration table prints them."""
    rows = []
    for claim in registry.claims:
        for i, h in enumerate(claim.hypotheses):
            rows.append(
                [
                    claim.id if i == 0 else "",
                    claim.statement if i == 0 else "",
                    ("**" + h.name + "**") if i == 0 else h.name,
                    "{" + ", ".join(h.x) + "}",
                    "{" + ", ".join(h.y) + "}",
                    h.family,
                    (h.metric or claim.metric) if i == 0 or h.metric else "″",
                    f"±{registry.rope(claim):g}",
                    ", ".join(claim.suites) if i == 0 else "",
                ]
            )
    return rows


PREREGISTRATION_HEADER = ["claim", "statement", "hypothesis (first = headline)", "X arms", "Y arms", "family",
                          "metric", "ROPE (P)", "suites"]  # fmt: skip


def preregistration_text(registry: Registry) -> str:
    """The verdict rule in words, with the registry's constants (and its version and date where it has them)."""
    d = registry.defaults
    identity = f"Registry {registry.identity}. " if registry.identity else ""
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
