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
so a new section is one model and one field of :class:`Registry`. This module holds the models and the loader;
arm sets and arm matching are :mod:`wnbench.report.arms` (re-exported here), the printed pre-registration is
:mod:`wnbench.report.preregistration`.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from wnbench.errors import UserError

# arm sets and matching live in .arms; re-exported, as every caller imports them from here
from .arms import (  # noqa: F401
    ALIASES,
    DESIGN_SEP,
    ArmPair,
    Arms,
    ArmSet,
    arm_of,
    canonical,
    is_careless_init,
    is_design,
    parse_label,
    split_design,
)

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")
#: The v2 rules (the registry behind the v2 verdicts), kept so the v2 records can be analysed under both.
REGISTRY_V2_FILE = Path(__file__).with_name("registry_v2.yaml")
#: ``--registry v2|v3``: the built-in registries by version (the default, v3, is ``registry.yaml``).
BUILTIN = {"v2": REGISTRY_V2_FILE, "v3": REGISTRY_FILE}
#: Environment variable naming another registry file to use wherever no path is given.
REGISTRY_ENV = "WNBENCH_REGISTRY"
ANALYSES = ("comparison", "timing", "noise", "ddi", "lr_robustness", "init_sensitivity")


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


# -- v3 sections -------------------------------------------------------------------------------------------------------
class Margins(BaseModel):
    """Half-widths in P units: the equivalence region around 0.5 and the non-inferiority margin."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    equivalence: float = Field(ge=0, lt=0.5)
    non_inferiority: float = Field(ge=0, lt=0.5)


class Sensitivity(BaseModel):
    """The checks printed under every headline."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    leave_one_task_out: bool = True
    at_peer_only: bool = True
    without_v2_cells: bool = True


class Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    evaluation: tuple[int, ...]
    tuning: tuple[int, ...] = ()


class Method(BaseModel):
    """The v3 decider: the per-cell statistic, its mean per task, decided over tasks (``decider``), Holm."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decider: Literal["sign_flip", "t", "hksj"]
    statistic: Literal["probability_of_improvement"]
    min_tasks: int = Field(ge=2)
    min_runs: int = Field(ge=1)
    confidence: float = Field(gt=0.5, lt=1)
    margins: Margins
    verdicts: dict[str, str] = {}
    description: dict[str, str] = {}
    sensitivity: Sensitivity = Sensitivity()
    seeds: Seeds | None = None


PeerGrade = Literal["at peer", "below peer", "no reference"]


class PeerGate(BaseModel):
    """Each cell's baseline graded against a published figure; which grades a headline uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: float = Field(gt=0)
    grades: tuple[PeerGrade, ...]
    headline_cells: tuple[PeerGrade, ...]


class MatrixSection(BaseModel):
    """The practitioner's matrix: rows (algorithm families, generative models) and columns (arms)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cell_width: int = Field(40, ge=10)


class Amendment(BaseModel):
    """A change after the registry's date: when, what and why (the report prints both verdicts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    date: datetime.date
    change: str
    reason: str


class WandbPanels(BaseModel):
    """What a claim's W&B report section draws per cell: curves against steps, and final metrics as bars."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    curves: tuple[str, ...] = ()
    finals: tuple[str, ...] = ()


class Hypothesis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    x: Arms
    y: Arms
    family: str
    metric: str | None = None  # a claim-specific measurement's variant (C3: "throughput")
    #: keep only cells whose config field has one of these values (on top of the claim's own filter)
    cells: dict[str, tuple[str, ...]] | None = None
    #: superiority (default), equivalence (supported inside the margin) or non-inferiority (method.margins)
    test: Literal["superiority", "equivalence", "non_inferiority"] = "superiority"


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^C\d+(-[A-Za-z0-9]+)*$")
    statement: str
    analysis: Literal["comparison", "timing", "noise", "ddi", "lr_robustness", "init_sensitivity"]
    suites: tuple[str, ...]
    metric: str
    hypotheses: tuple[Hypothesis, ...] = Field(min_length=1)
    rope: float | None = Field(None, ge=0, lt=0.5)
    min_runs: int | None = Field(None, ge=1)
    min_cells: int | None = Field(None, ge=1)
    tolerance: float | None = Field(None, gt=0, lt=1)
    #: lr_robustness: a good rate's normalized score is also at least this share of the cell's best median
    floor: float | None = Field(None, ge=0, le=1)
    #: lr_robustness (v3): a cell counts for an arm pair only where both arms reach the good level
    both_good: bool = False
    #: ddi (v3): the largest mean |WN+DDI - BN| (output SDs) on held-out batches that still counts as "like BN"
    heldout_tolerance: float | None = Field(None, gt=0)
    #: keep only cells whose config field has one of these values
    cells: dict[str, tuple[str, ...]] | None = None
    #: alternative arm sets for the headline, printed in its sensitivity table
    sensitivity_arm_sets: tuple[ArmPair, ...] = ()
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
    """The whole file: its identity (``version``, ``date``), the rule's defaults (v2) or ``method`` (v3), named
    arm sets and designs, the peer gate, the practitioner's matrix, the claims and the amendments."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int | None = Field(None, ge=1)
    date: datetime.date | None = None
    defaults: Defaults = Defaults()
    method: Method | None = None
    peer_gate: PeerGate | None = None
    arm_sets: dict[str, Arms] = {}
    designs: dict[str, Arms] = {}
    matrix: MatrixSection | None = None
    claims: tuple[Claim, ...]
    amendments: tuple[Amendment, ...] = ()
    #: the file it was read from (set by the loader; not part of the file)
    source: str = Field("", exclude=True)

    @field_validator("claims")
    @classmethod
    def _unique(cls, claims: tuple[Claim, ...]) -> tuple[Claim, ...]:
        ids = [c.id for c in claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"claim ids repeat: {', '.join(dupes)}")
        return claims

    @field_validator("designs")
    @classmethod
    def _designs(cls, designs: dict[str, ArmSet]) -> dict[str, ArmSet]:
        bad = [f"{name}: {a!r}" for name, arms in designs.items() for a in arms if not is_design(a)]
        if bad:
            raise ValueError(f"a design arm is ALGO:NORM (e.g. sac:weight): {'; '.join(bad)}")
        return designs

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
    def decides_over_tasks(self) -> bool:
        """True for a v3 registry (``method.decider``): comparisons decided over tasks, not by the v2 bootstrap."""
        return self.method is not None

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
        """Every arm named anywhere in the registry (hypotheses and sensitivity alternatives; design arms as
        ``ALGO:NORM``)."""
        sides = [s for c in self.claims for h in (*c.hypotheses, *c.sensitivity_arm_sets) for s in (h.x, h.y)]
        return list(dict.fromkeys(a for side in sides for a in side))


def _expand_side(value: Any, sets: Mapping[str, Any], where: str) -> Any:
    """``x: WN`` -> the named arm set (from ``arm_sets`` or ``designs``) as written there; lists stay as written."""
    if not isinstance(value, str):
        return value
    if value not in sets:
        raise UserError(
            f"claims registry: {where}: unknown arm set {value!r}; known: {', '.join(sets)} (or give a list of "
            "norm labels)"
        )
    found = sets[value]
    return dict(found) if isinstance(found, Mapping) else list(found)


def _rejoin_name(hyp: dict[str, Any]) -> dict[str, Any]:
    """An unquoted flow-mapping name with commas (``{name: a (b, c), x: ...}``) reaches us split into ``name: a (b``
    plus keys ``c)`` with no value; the keys right after ``name`` that are no field and hold nothing are joined
    back into it (how the file is spelled, not what it says: registry.yaml's C8 hypothesis)."""
    if not isinstance(hyp.get("name"), str):
        return hyp
    keys = list(hyp)
    start = keys.index("name") + 1
    tail = []
    for key in keys[start:]:
        if key in Hypothesis.model_fields or hyp[key] is not None or not isinstance(key, str):
            break
        tail.append(key)
    if not tail:
        return hyp
    name = ", ".join([hyp["name"], *tail])
    return {
        ("name" if k == "name" else k): (name if k == "name" else v) for k, v in hyp.items() if k not in tail
    }


def _expand_sets(raw: dict[str, Any]) -> dict[str, Any]:
    """Named arm sets and designs in hypotheses and ``sensitivity_arm_sets`` -> their members; v3's ``method``
    supplies the rule's constants (``defaults``) when the file gives none."""
    sets = {**(raw.get("designs") or {}), **(raw.get("arm_sets") or {})}
    for claim in raw.get("claims") or []:
        if not isinstance(claim, dict):
            continue
        if isinstance(claim.get("hypotheses"), list):
            claim["hypotheses"] = [_rejoin_name(h) if isinstance(h, dict) else h for h in claim["hypotheses"]]
        for key in ("hypotheses", "sensitivity_arm_sets"):
            for i, hyp in enumerate(claim.get(key) or []):
                for side in ("x", "y"):
                    if isinstance(hyp, dict):
                        hyp[side] = _expand_side(
                            hyp.get(side), sets, f"{claim.get('id', '?')}: {key}[{i}].{side}"
                        )
    method = raw.get("method")
    if isinstance(method, dict) and "defaults" not in raw:
        margins = method.get("margins") if isinstance(method.get("margins"), dict) else {}
        raw["defaults"] = {k: v for k, v in {"confidence": method.get("confidence"), "min_runs": method.get(
            "min_runs"), "rope": margins.get("equivalence")}.items() if v is not None}  # fmt: skip
    return raw


def registry_path(path: str | Path | None = None) -> Path:
    """The registry file to read: ``path`` if given (``v2``/``v3`` name the built-in ones), else
    ``$WNBENCH_REGISTRY`` if set, else the built-in v3 one."""
    if path is not None:
        return BUILTIN.get(str(path), Path(path))
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
    if "source" in raw:
        raise UserError(f"claims registry {path}: invalid", ["source: extra inputs are not permitted"])
    try:
        return Registry(**_expand_sets(raw), source=str(path))
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise UserError(f"claims registry {path}: invalid", problems) from err
