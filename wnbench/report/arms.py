"""Arm sets and arm matching: a hypothesis side as the registry writes it (a list, ``{first_of: [...]}`` or
``{members: [...]}``, each with an optional ``not_in`` filter), design arms ``ALGO:NORM``, and which registry arm
a record's norm label counts for.

    side = ArmSet(["batch[bn_mode=running]", "batch"], first=True, not_in={"algo": ("sac", "td3")})
    arm_of("batch_renorm[warmup_steps=1000]", ["batch", "batch_renorm"])  # "batch_renorm"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator

#: Old or alternative spellings of a norm's base name -> the registry's.
ALIASES = {"weight_meanonly": "weight+meanonly"}
#: A design arm is ``ALGO:NORM`` (``sac:weight``, ``crossq:batch_renorm[placement=pre]``).
DESIGN_SEP = ":"
#: The keys of an arm set written as a mapping: its members (one of the first two) and where it does not apply.
SET_KEYS = ("first_of", "members", "not_in")


# -- arm sets ----------------------------------------------------------------------------------------------------------
class ArmSet(tuple):  # noqa: SLOT001 - a tuple of arm labels with two attributes
    """A hypothesis side: its arm labels (iterates like a tuple), how a cell picks among them (pooled: every
    member present; ``first_of``: the first member present, as its advocates run it) and the cells where none of
    them is the side (``not_in``: ``{config field: values}``, a cell matching every field is left out for this
    side: BN's members in an off-policy actor-critic cell are not BN's advocated form there)."""

    first: bool
    not_in: dict[str, tuple[str, ...]]

    def __new__(
        cls,
        members: Iterable[str] = (),
        first: bool = False,
        not_in: Mapping[str, Sequence[str]] | None = None,
    ) -> ArmSet:
        out = super().__new__(cls, tuple(members))
        out.first = first
        out.not_in = {k: tuple(v) for k, v in (not_in or {}).items()}
        return out

    def __getnewargs__(self) -> tuple[tuple[str, ...], bool, dict[str, tuple[str, ...]]]:  # copies keep both
        return tuple(self), self.first, self.not_in

    @property
    def first_of(self) -> tuple[str, ...] | None:
        """The members in order when the set is ``{first_of: [...]}``; ``None`` for a pooled set."""
        return tuple(self) if self.first else None

    @property
    def designs(self) -> bool:
        """Design arms (``ALGO:NORM``): a cell is (task, budget) across algorithms, an arm an (algo, norm) pair."""
        return bool(self) and all(is_design(a) for a in self)

    def without_not_in(self) -> ArmSet:
        """The same members and rule, in every cell."""
        return ArmSet(self, self.first)

    @property
    def not_in_text(self) -> str:
        return "; ".join(f"{k} in {{{', '.join(v)}}}" for k, v in self.not_in.items())

    @property
    def text(self) -> str:
        inner = ", ".join(self)
        out = f"first of ({inner})" if self.first else "{" + inner + "}"
        return out + (f", not in cells with {self.not_in_text}" if self.not_in else "")

    def as_data(self) -> list[str] | dict[str, Any]:
        """The YAML form: a list, ``{first_of: [...]}`` or ``{members: [...]}``, with ``not_in`` when set."""
        if not self.not_in:
            return {"first_of": list(self)} if self.first else list(self)
        key = "first_of" if self.first else "members"
        return {key: list(self), "not_in": {k: list(v) for k, v in self.not_in.items()}}


def is_design(arm: str) -> bool:
    """``sac:weight`` is a design arm; ``batch[bn_mode=running]`` and ``weight@discriminator`` are not."""
    return DESIGN_SEP in arm.split("[", 1)[0]


def split_design(arm: str) -> tuple[str, str]:
    """``"crossq:batch_renorm[placement=pre]"`` -> ("crossq", "batch_renorm[placement=pre]")."""
    algo, _, norm = arm.partition(DESIGN_SEP)
    return algo.strip(), norm.strip()


def _not_in(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"not_in is a mapping of config field -> list of values, got {value!r}")
    out = {}
    for key, values in value.items():
        if isinstance(values, str) or not isinstance(values, list | tuple) or not values:
            raise ValueError(f"not_in.{key}: expected a non-empty list of values, got {values!r}")
        out[str(key)] = tuple(str(v) for v in values)
    return out


def arm_set_of(value: Any) -> ArmSet:
    """A list of labels (pooled), ``{first_of: [labels]}`` or ``{members: [labels]}``, either mapping with an
    optional ``not_in``; a design list must be all ``ALGO:NORM`` labels."""
    if isinstance(value, ArmSet):
        return value
    first, not_in = False, None
    if isinstance(value, Mapping):
        keys = set(value)
        if not keys <= set(SET_KEYS) or len(keys & {"first_of", "members"}) != 1:
            raise ValueError(
                "an arm set is a list of labels, {first_of: [...]} or {members: [...]}, optionally with "
                f"not_in: {{field: [values]}}; got keys {sorted(keys)}"
            )
        first = "first_of" in value
        not_in = _not_in(value["not_in"]) if "not_in" in value else None
        value = value["first_of" if first else "members"]
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a non-empty list of arm labels, got {value!r}")
    if not all(isinstance(a, str) and a.strip() for a in value):
        raise ValueError(f"arm labels must be non-empty strings, got {value!r}")
    designs = [is_design(a) for a in value]
    if any(designs) and not all(designs):
        raise ValueError(f"mixes design arms (ALGO:NORM) with plain norms: {list(value)}")
    return ArmSet(value, first, not_in)


Arms = Annotated[ArmSet, PlainValidator(arm_set_of), PlainSerializer(lambda a: a.as_data())]


class ArmPair(BaseModel):
    """An alternative (x, y) for a claim's headline, printed in its sensitivity table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Arms
    y: Arms

    @property
    def text(self) -> str:
        return f"{self.x.text} vs {self.y.text}"


# -- arms ------------------------------------------------------------------------------------------------------------
def parse_label(label: str) -> tuple[str, frozenset[str]]:
    """``"batch_renorm[warmup_steps=1000]"`` -> ("batch_renorm", {"warmup_steps=1000"}), aliases resolved."""
    base, _, rest = label.partition("[")
    options = frozenset(o.strip() for o in rest.rstrip("]").split(",") if o.strip()) if rest else frozenset()
    base = base.strip()
    if base.startswith("none+"):
        base = base.removeprefix("none+")
    return ALIASES.get(base, base), options


def is_careless_init(label: str) -> bool:
    """Whether a label is a careless-init arm (norm option ``init_gain``, C6's measurement): ``weight[init_gain=10]``
    is ``weight``'s careless twin, not one of ``weight``'s runs."""
    return any(o.startswith("init_gain=") for o in parse_label(label)[1])


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
