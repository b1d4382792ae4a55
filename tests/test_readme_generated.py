"""Every generated block of README.md and docs/*.md is what the committed report files give (make publish-report),
the README's first screen holds the answer, and the pre-registration line names the right commits.

The chain to the records: tests/test_publish.py checks that docs/results/verdicts.json and verdicts_v2.json are
what results/published gives; this file checks that every block is what those files give, so no figure in a block
can drift from the records."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from wnbench.errors import UserError
from wnbench.report.docs_blocks import Sources
from wnbench.report.preregistration import preregistration_line
from wnbench.report.readme import (
    BLOCKS,
    CELL_WIDTH,
    blocks_in,
    default_sources,
    generated_pages,
    render_block,
    splice_readme,
    summary_block,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def sources() -> Sources:
    return default_sources(ROOT / "docs/results", ROOT)


def test_every_generated_block_in_the_readme_and_docs_is_what_the_committed_files_give(sources):
    if "pre-registered at" not in sources.preregistration:
        pytest.skip(f"no pre-registration commit in this checkout's history ({sources.preregistration!r})")
    seen: dict[str, set[str]] = {}
    for page in generated_pages(README):
        text = page.read_text(encoding="utf-8")
        for name, block in blocks_in(text, str(page)):
            seen.setdefault(page.name, set()).add(name)
            assert block == render_block(name, sources), (
                f"{page.relative_to(ROOT)}: generated block {name!r} is stale or hand-edited; run make publish-report"
            )
    assert seen["README.md"] == {"matrix", "verdicts"}
    # every kind of block is used somewhere, so none can rot unseen
    assert set().union(*seen.values()) == set(BLOCKS)


def test_the_first_screen_holds_the_matrix_the_verdicts_and_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    end = lambda name: lines.index(f"<!-- {name}:end -->")  # noqa: E731
    assert end("matrix") < end("verdicts") < 55, "the answer must be on the first screen"
    table = [line for line in lines[: end("verdicts")] if line.startswith("| **C")]
    assert table, "the verdict table has rows"
    for row in table:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 3 and all(len(c) <= CELL_WIDTH for c in cells), row
    text = "\n".join(lines)
    assert "make bench-rl" in text and "\nmake test " in text
    assert "make test" in (ROOT / ".ci/run").read_text()  # CI runs the README's test command


def test_no_hand_written_figures_outside_the_readme_blocks():
    """Outside its generated blocks the README holds no measured figure (a decimal, a ratio, a percentage)."""
    text = README.read_text(encoding="utf-8")
    for _, block in blocks_in(text, "README.md"):
        text = text.replace(block, "")
    assert not re.findall(r"\d+\.\d+|\d+ ?%|\d+(?:\.\d+)?×", text)


def test_summary_cells_fit_whatever_the_verdicts_say():
    long = "x" * 90
    claims = [
        {"claim": "C9", "title": "a statement far longer than any cell may be " * 3, "verdict": "supported",
         "headline": {"name": "WN set > every BN-like arm set", "probability": 0.91234, "ci_low": 0.612,
                      "ci_high": 0.97, "tasks": list("abcdef")}},
        {"claim": "C10", "title": "bench", "verdict": "contradicted", "basis": "benchmark rule",
         "headline": {"text": f"median |a − b| ({long}): 0.04 after 0, 0.10 after 10; tolerance 0.1; outside"}},
        {"claim": "C11", "title": "short", "verdict": "insufficient data",
         "headline": {"name": "WN > BN", "probability": 0.5, "tasks": ["a", "b"], "needs_tasks": 5}},
        {"claim": "C12", "title": "init", "verdict": "supported",
         "headline": {"name": "WN without DDI is more init-sensitive than BN", "probability": 0.319,
                      "ci_low": 0.24, "ci_high": 0.395, "metric": "init sensitivity difference (P units)",
                      "tasks": list("abcdefgh")}},
    ]  # fmt: skip
    block = summary_block(Sources({"claims": claims, "records": 3}))
    rows = [line for line in block.splitlines() if line.startswith("| **C")]
    for row in rows:
        assert all(len(c.strip()) <= CELL_WIDTH for c in re.split(r"(?<!\\)\|", row)[1:-1]), row
    assert "| P(X > Y) = 0.912 [0.612, 0.970], 6 tasks |" in rows[0]  # the hypothesis' name did not fit
    assert rows[0].split(" | ")[0].endswith("…")
    assert "P(WN > BN) = 0.500, 2 tasks (needs 5)" in rows[2]
    assert "1 claim read insufficient data" in block
    # a difference of two measures is not labelled a probability, and counts its tasks
    assert "| init sensitivity difference = 0.319 [0.240, 0.395], 8 tasks |" in rows[3]


def _payload(verdict: str) -> dict:
    return {"records": 4, "claims": [{"claim": "C1", "title": "WN beats BN", "verdict": verdict,
                                      "headline": {"name": "WN > BN", "probability": 0.7, "tasks": ["a"]}}]}  # fmt: skip


def test_splice_rewrites_the_readme_and_its_docs_pages_and_refuses_unknown_blocks(tmp_path):
    report = tmp_path / "docs/results"
    report.mkdir(parents=True)
    (report / "verdicts.json").write_text(json.dumps(_payload("supported")))
    readme, page = tmp_path / "README.md", tmp_path / "docs/claims.md"
    readme.write_text("# x\n\n<!-- verdicts:begin -->\nold\n<!-- verdicts:end -->\n\nhand text\n")
    page.write_text("<!-- verdicts-detail:begin -->\n<!-- verdicts-detail:end -->\n")
    assert splice_readme(readme, report) == [readme, page]
    assert "| **C1** WN beats BN | **supported** | P(WN > BN) = 0.700, 1 task |" in readme.read_text()
    assert readme.read_text().endswith("\n\nhand text\n") and "old" not in readme.read_text()
    assert splice_readme(readme, report) == []  # idempotent
    (report / "verdicts.json").write_text(json.dumps(_payload("contradicted")))
    assert splice_readme(readme, report) == [readme, page]
    assert "**contradicted**" in readme.read_text() and "**contradicted**" in page.read_text()
    page.write_text("<!-- costz:begin -->\n<!-- costz:end -->\n")
    with pytest.raises(UserError, match=r"claims\.md: unknown generated block 'costz'"):
        splice_readme(readme, report)
    page.write_text("<!-- costs:begin -->\nno end\n")
    with pytest.raises(UserError, match="has no '<!-- costs:end -->'"):
        splice_readme(readme, report)
    (report / "verdicts.json").unlink()
    with pytest.raises(UserError, match="verdicts.json: missing"):
        splice_readme(readme, report)


# -- the pre-registration line ---------------------------------------------------------------------------------------
def _git(repo: Path, *args: str, date: str = "2026-12-06T14:59:11+00:00") -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _commit(repo: Path, message: str, date: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message, date=date)
    return _git(repo, "rev-parse", "HEAD")


AMENDMENT = "  - date: {d}\n    change: a change\n    reason: a reason\n"


def test_preregistration_line_names_the_first_commit_of_the_version_and_the_amended_content(tmp_path):
    repo = tmp_path / "repo"
    folder = repo / "pkg"
    folder.mkdir(parents=True)
    _git(repo, "init", "-q")
    (folder / "registry.yaml").write_text("version: 2\ndate: 2026-12-03\n")
    _commit(repo, "v2", "2026-12-03T10:00:00+00:00")
    (folder / "registry_v3.yaml").write_text("version: 3\ndate: 2026-12-06\n")
    prereg = _commit(repo, "pre-registration", "2026-12-06T14:59:11+00:00")
    # the swap of file names (v3 becomes registry.yaml) keeps the pre-registration commit
    (folder / "registry_v3.yaml").rename(folder / "registry_v2.yaml.tmp")
    (folder / "registry.yaml").rename(folder / "registry_v2.yaml")
    (folder / "registry_v2.yaml.tmp").rename(folder / "registry.yaml")
    _commit(repo, "swap", "2026-12-06T15:36:00+00:00")
    path = folder / "registry.yaml"
    assert preregistration_line(path) == f"pre-registered at {prereg[:7]} (2026-12-06 14:59 UTC)"
    path.write_text(path.read_text() + "amendments:\n" + AMENDMENT.format(d="2026-12-06"))
    first = _commit(repo, "amendment", "2026-12-06T17:05:00+00:00")
    assert preregistration_line(path) == (
        f"pre-registered at {prereg[:7]} (2026-12-06 14:59 UTC); amended 2026-12-06 (1 amendment, content at "
        f"{first[:7]})"
    )
    path.write_text(path.read_text() + AMENDMENT.format(d="2026-12-07"))
    second = _commit(repo, "second amendment", "2026-12-07T09:00:00+00:00")
    assert preregistration_line(path).endswith(f"amended 2026-12-07 (2 amendments, content at {second[:7]})")
    path.write_text(path.read_text() + "# an edit not yet committed\n")
    assert preregistration_line(path).endswith("(2 amendments, content at an uncommitted file)")
    # the v2 file's own line: its version first appeared in the first commit
    assert preregistration_line(folder / "registry_v2.yaml").startswith("pre-registered at ")


def test_preregistration_line_outside_git_says_so(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("version: 3\n")
    line = preregistration_line(path)
    assert line.startswith("registry version 3: file dated ") and "not a committed version" in line


def test_this_repository_names_the_v3_pre_registration_commit():
    try:
        _git(ROOT, "cat-file", "-e", "489ed8f^{commit}")
    except subprocess.CalledProcessError:
        pytest.skip("history without the pre-registration commit (shallow clone)")
    assert preregistration_line(ROOT / "wnbench/report/registry.yaml").startswith(
        "pre-registered at 489ed8f (2026-12-06 14:59 UTC)"
    )
