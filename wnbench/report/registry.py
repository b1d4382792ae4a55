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
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)

from wnbench.errors import UserError

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")
#: The v2 rules (the registry behind the v2 verdicts), kept so the v2 records can be analysed under both.
REGISTRY_V2_FILE = Path(__file__).with_name("registry_v2.yaml")
#: ``--registry v2|v3``: the built-in registries by version (the default, v3, is ``registry.yaml``).
BUILTIN = {"v2": REGISTRY_V2_FILE, "v3": REGISTRY_FILE}
#: Environment variable naming another registry file to use wherever no path is given.
REGISTRY_ENV = "WNBENCH_REGISTRY"
ANALYSES = ("comparison", "timing", "noise", "ddi", "lr_robustness", "init_sensitivity")
#: Old or alternative spellings of a norm's base name -> the registry's.
ALIASES = {"weight_meanonly": "weight+meanonly"}
#: A design arm is ``ALGO:NORM`` (``sac:weight``, ``crossq:batch_renorm[placement=pre]``).
DESIGN_SEP = ":"


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


# -- arm sets ----------------------------------------------------------------------------------------------------------
class ArmSet(tuple):  # noqa: SLOT001 - a tuple of arm labels with one flag
    """A hypothesis side: its arm labels (iterates like a tuple) and how a cell picks among them: pooled (every
    member present) or ``first_of`` (the first member present, as its advocates run it)."""

    first: bool

    def __new__(cls, members: Iterable[str] = (), first: bool = False) -> ArmSet:
        out = super().__new__(cls, tuple(members))
        out.first = first
        return out

    def __getnewargs__(self) -> tuple[tuple[str, ...], bool]:  # pickling / copying keep the flag
        return tuple(self), self.first

    @property
    def first_of(self) -> tuple[str, ...] | None:
        """The members in order when the set is ``{first_of: [...]}``; ``None`` for a pooled set."""
        return tuple(self) if self.first else None

    @property
    def designs(self) -> bool:
        """Design arms (``ALGO:NORM``): a cell is (task, budget) across algorithms, an arm an (algo, norm) pair."""
        return bool(self) and all(is_design(a) for a in self)

    @property
    def text(self) -> str:
        inner = ", ".join(self)
        return f"first of ({inner})" if self.first else "{" + inner + "}"

    def as_data(self) -> list[str] | dict[str, list[str]]:
        """The YAML form: a list, or ``{first_of: [...]}``."""
        return {"first_of": list(self)} if self.first else list(self)


def is_design(arm: str) -> bool:
    """``sac:weight`` is a design arm; ``batch[bn_mode=running]`` and ``weight@discriminator`` are not."""
    return DESIGN_SEP in arm.split("[", 1)[0]


def split_design(arm: str) -> tuple[str, str]:
    """``"crossq:batch_renorm[placement=pre]"`` -> ("crossq", "batch_renorm[placement=pre]")."""
    algo, _, norm = arm.partition(DESIGN_SEP)
    return algo.strip(), norm.strip()


def _arm_set(value: Any) -> ArmSet:
    """A list of labels (pooled) or ``{first_of: [labels]}``; a design list must be all ``ALGO:NORM`` labels."""
    if isinstance(value, ArmSet):
        return value
    first = False
    if isinstance(value, Mapping):
        if set(value) != {"first_of"}:
            raise ValueError(
                f"an arm set is a list of labels or {{first_of: [...]}}, got keys {sorted(value)}"
            )
        value, first = value["first_of"], True
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a non-empty list of arm labels, got {value!r}")
    if not all(isinstance(a, str) and a.strip() for a in value):
        raise ValueError(f"arm labels must be non-empty strings, got {value!r}")
    designs = [is_design(a) for a in value]
    if any(designs) and not all(designs):
        raise ValueError(f"mixes design arms (ALGO:NORM) with plain norms: {list(value)}")
    return ArmSet(value, first)


Arms = Annotated[ArmSet, PlainValidator(_arm_set), PlainSerializer(lambda a: a.as_data())]


class ArmPair(BaseModel):
    """An alternative (x, y) for a claim's headline, printed in its sensitivity table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Arms
    y: Arms

    @property
    def text(self) -> str:
        return f"{self.x.text} vs {self.y.text}"


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
    committed = registry_commit(registry.source) if registry.source else ""
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
