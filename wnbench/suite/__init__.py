"""The suite engine: declarative YAML suites -> validated grid of runs -> isolated, resumable, tracked execution.

    from wnbench.suite import load_suite, run_suite
    suite = load_suite("suites/smoke.yaml", profile="smoke", overrides={"seeds": 2})
    result = run_suite(suite, "results/smoke", workers=2)

Run kinds plug in through :mod:`wnbench.suite.kinds` (read its docstring to add one).
"""

from .engine import SuiteResult, plan, run_suite, status_of
from .kinds import Budget, Diverged, RunContext, RunSpec, available_kinds, get_kind, register_kind
from .signals import Interrupted
from .spec import ResolvedRun, Suite, load_suite, parse_overrides, run_id_of, select_runs
from .store import DONE_STATUSES, STATUSES, is_done, iter_records, read_record, record_path, write_record

__all__ = [
    "Budget",
    "DONE_STATUSES",
    "Diverged",
    "Interrupted",
    "ResolvedRun",
    "RunContext",
    "RunSpec",
    "STATUSES",
    "Suite",
    "SuiteResult",
    "available_kinds",
    "get_kind",
    "is_done",
    "iter_records",
    "load_suite",
    "parse_overrides",
    "select_runs",
    "plan",
    "read_record",
    "record_path",
    "register_kind",
    "run_id_of",
    "run_suite",
    "status_of",
    "write_record",
]
