"""Published archives cannot be lost or silently truncated: publishers running at once give the union of their
records, every reader checks an archive against the count and digest its plan records, and a damaged archive is an
error (exit 2, naming the file) for ``verify``, ``report`` and ``publish`` alike -- never a partial result."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import toy_suite

from wnbench import cli
from wnbench.errors import UserError
from wnbench.suite import published
from wnbench.suite.engine import run_suite
from wnbench.suite.publish_lock import LOCK_NAME, PublishLockError, publish_lock
from wnbench.suite.published import ArchiveError, export_published, find_archives, read_archive
from wnbench.suite.spec import load_suite
from wnbench.tracking import TrackingOptions

ROOT = Path(__file__).resolve().parents[1]
SUITE = toy_suite("toyint", claims="[C1]", norms="[none, weight]", seeds=3)


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> list[Path]:
    """Three run folders, one per seed (2 records each), as ``wnbench run --only seed=N`` leaves them."""
    base = tmp_path_factory.mktemp("runs")
    suite = base / "toyint.yaml"
    suite.write_text(SUITE)
    whole = base / "whole"
    run_suite(load_suite(suite), whole, workers=2, tracking=TrackingOptions(mode="disabled"), rich=False,
              summary=False)  # fmt: skip
    out = []
    for seed in range(3):
        part = base / f"seed{seed}"
        (part / "runs").mkdir(parents=True)
        shutil.copy(whole / "suite.json", part / "suite.json")
        for record in (whole / "runs").glob("*/record.json"):
            if json.loads(record.read_text())["config"]["seed"] == seed:
                shutil.copytree(record.parent, part / "runs" / record.parent.name)
        out.append(part)
    return out


def _ids(folder: Path) -> set[str]:
    return {p.parent.name for p in (folder / "runs").glob("*/record.json")}


def _published_ids(archive: Path) -> set[str]:
    return {
        json.loads(line)["run_id"] for line in gzip.decompress(archive.read_bytes()).decode().splitlines()
    }


def _wnbench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``wnbench ARGS`` in this process (its main(), so a UserError becomes exit 2): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["wnbench", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_the_plan_records_the_count_and_the_digest_of_the_uncompressed_records(slices, tmp_path):
    """The digest names the records, not their compression: the same lines gzipped at another level still verify,
    so a re-compression (another zlib) is no false alarm, while any change to a record is caught."""
    archive, plan_path, count = export_published(slices[0], tmp_path)
    seal = json.loads(plan_path.read_text())["archive"]
    content = gzip.decompress(archive.read_bytes())
    assert seal["records"] == count == 2 == len(content.decode().splitlines())
    assert seal["sha256"] == hashlib.sha256(content).hexdigest()
    archive.write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    checked = read_archive(archive)
    assert checked.sealed and checked.count == 2 and {r["run_id"] for r in checked.records} == _ids(slices[0])


def _flip_compressed_byte(archive: Path) -> None:
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))


def _rewrite(archive: Path, edit) -> None:
    """Re-gzip edited content: a *valid* gzip file, which only the plan's count and digest can catch."""
    lines = gzip.decompress(archive.read_bytes()).decode().splitlines(keepends=True)
    archive.write_bytes(gzip.compress("".join(edit(lines)).encode(), mtime=0))


def _flip_content_byte(archive: Path) -> None:
    """One digit of a record's test_mse changed: the line still parses, the gzip is sound."""

    def edit(lines: list[str]) -> list[str]:
        at = re.search(r'"test_mse": -?\d+\.(\d)', lines[0]).start(1)  # its first decimal
        flipped = str((int(lines[0][at]) + 1) % 10)
        return [lines[0][:at] + flipped + lines[0][at + 1 :], *lines[1:]]

    _rewrite(archive, edit)


DAMAGE = {
    "flipped compressed byte": _flip_compressed_byte,
    "flipped byte in a record (valid gzip)": _flip_content_byte,
    "dropped line (valid gzip)": lambda a: _rewrite(a, lambda lines: lines[:-1]),
    "truncated file": lambda a: a.write_bytes(a.read_bytes()[: a.stat().st_size // 2]),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_archive_stops_verify_report_and_publish_naming_the_file(damage, slices, tmp_path, monkeypatch,
                                                                          capsys):  # fmt: skip
    dest = tmp_path / "published"
    archive, _, _ = export_published(slices[0], dest)
    export_published(slices[1], dest)
    DAMAGE[damage](archive)
    damaged = archive.read_bytes()
    commands = {
        "verify": ["verify", str(dest)],
        "report": ["report", str(dest), "--out", str(tmp_path / "r1"), "--reps", "100"],
        "report --reference": [
            "report",
            str(slices[2]),
            "--reference",
            str(dest),
            "--out",
            str(tmp_path / "r2"),
            "--reps",
            "100",
        ],  # fmt: skip
        "publish": ["publish", str(slices[2]), "--to", str(dest)],
    }
    for name, args in commands.items():
        code, _, err = _wnbench(monkeypatch, capsys, *args)
        assert code == 2, f"{name}: exit {code}\n{err}"
        assert f"{archive}: damaged published archive" in err, f"{name}: {err}"
        assert f"git checkout -- {archive}" in err and "Traceback" not in err, f"{name}: {err}"
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()  # no partial report
    assert archive.read_bytes() == damaged  # publish never overwrites an archive it cannot read
    assert not (dest / LOCK_NAME).exists()


def test_a_sealed_plan_whose_archive_is_gone_is_an_error_not_a_silent_gap(
    slices, tmp_path, monkeypatch, capsys
):
    dest = tmp_path / "published"
    archive, _, _ = export_published(slices[0], dest)
    archive.unlink()
    assert find_archives(dest) == [archive]
    for args in (["verify", str(dest)], ["publish", str(slices[1]), "--to", str(dest)]):
        code, _, err = _wnbench(monkeypatch, capsys, *args)
        assert code == 2 and f"{archive}: damaged published archive: the file is missing" in err
    assert not archive.exists()


def test_an_old_plan_without_a_digest_is_read_with_a_note_sealed_by_verify_seal_and_by_the_next_publish(
    slices, tmp_path, monkeypatch, capsys
):
    from wnbench.report import load_inputs

    dest = tmp_path / "published"
    archive, plan_path, _ = export_published(slices[0], dest)
    plan = json.loads(plan_path.read_text())
    old_plan = {k: v for k, v in plan.items() if k != "archive"}
    plan_path.write_text(json.dumps(old_plan))
    code, _, err = _wnbench(monkeypatch, capsys, "verify", str(dest))
    assert code == 2 and f"{archive}: no digest recorded" in err and "wnbench verify --seal" in err
    inputs = load_inputs([dest])  # readable: reported, with a note
    assert len(inputs.records) == 2 and any("no digest recorded" in w for w in inputs.warnings)
    code, out, _ = _wnbench(monkeypatch, capsys, "verify", "--seal", str(dest))
    assert code == 0 and f"sealed {archive}" in out
    assert json.loads(plan_path.read_text()) == plan  # the same seal publish writes, nothing else changed
    code, out, _ = _wnbench(monkeypatch, capsys, "verify", "--seal", str(dest))
    assert code == 0 and "sealed" not in out  # a recorded digest is only checked
    plan_path.write_text(json.dumps(old_plan))
    _, _, count = export_published(slices[1], dest)
    assert json.loads(plan_path.read_text())["archive"]["records"] == count == 4
    _rewrite(archive, lambda lines: lines[:-1])
    code, _, err = _wnbench(monkeypatch, capsys, "verify", "--seal", str(dest))
    assert (
        code == 2 and "damaged published archive: 3 records where its plan" in err
    )  # --seal cannot hide damage


def test_publishers_at_once_give_the_union_when_one_pauses_between_reading_and_writing(slices, tmp_path,
                                                                                         monkeypatch):  # fmt: skip
    """Publisher A reads the archive and stalls before writing; publisher B starts meanwhile. Without the lock B
    writes its records and A then overwrites them with what it read; with it B waits and merges A's records."""
    dest = tmp_path / "published"
    export_published(slices[0], dest)
    a_has_read, a_may_write = threading.Event(), threading.Event()
    write = published._write_archive

    def paused_write(*args, **kwargs):
        if threading.current_thread().name == "A":
            a_has_read.set()
            assert a_may_write.wait(30)
        write(*args, **kwargs)

    monkeypatch.setattr(published, "_write_archive", paused_write)
    errors: list[BaseException] = []

    def publish(out: Path) -> None:
        try:
            export_published(out, dest, lock_timeout_s=30)
        except BaseException as err:  # noqa: BLE001 - reported by the assert below
            errors.append(err)

    a = threading.Thread(target=publish, args=(slices[1],), name="A")
    b = threading.Thread(target=publish, args=(slices[2],), name="B")
    a.start()
    assert a_has_read.wait(30)
    b.start()
    b.join(1.0)
    assert b.is_alive(), "B published while A held what it had read: A's write would drop B's records"
    a_may_write.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    archive = dest / "toyint.jsonl.gz"
    assert _published_ids(archive) == _ids(slices[0]) | _ids(slices[1]) | _ids(slices[2])
    assert read_archive(archive).count == 6 and not (dest / LOCK_NAME).exists()
    assert not list(dest.glob(".*tmp"))  # unique temp files, each replaced or removed


def _lock_file(dest: Path, **owner) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / LOCK_NAME
    path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                                "token": "someone-else", **owner}))  # fmt: skip
    return path


def test_a_live_lock_makes_publish_wait_then_give_up_with_exit_2_naming_its_holder(slices, tmp_path, monkeypatch,
                                                                                    capsys):  # fmt: skip
    dest = tmp_path / "published"
    lock = _lock_file(dest)  # held by this (live) process under another token
    started = time.monotonic()
    args = ["publish", str(slices[0]), "--to", str(dest), "--lock-timeout", "0.5"]
    code, _, err = _wnbench(monkeypatch, capsys, *args)
    assert code == 2 and time.monotonic() - started >= 0.5
    assert f"{lock} is held by pid {os.getpid()} on host {socket.gethostname()}" in err
    assert lock.exists() and not (dest / "toyint.jsonl.gz").exists()


def test_a_stale_lock_is_broken_a_dead_local_owner_at_once_a_silent_remote_one_after_its_age(
    slices, tmp_path
):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dest = tmp_path / "published"
    _lock_file(dest, pid=int(dead.stdout))
    _, _, count = export_published(slices[0], dest, lock_timeout_s=5)
    assert count == 2 and not (dest / LOCK_NAME).exists()
    lock = _lock_file(dest, host="another-host", pid=1)
    with (
        pytest.raises(PublishLockError),
        publish_lock(dest, timeout_s=0.3),
    ):  # another host's, recently touched
        pass
    os.utime(lock, (time.time() - 3600, time.time() - 3600))  # its owner's heartbeat stopped an hour ago
    _, _, count = export_published(slices[1], dest, lock_timeout_s=5)
    assert count == 4 and not (dest / LOCK_NAME).exists()


def test_a_publish_lock_that_cannot_be_created_refuses_with_exit_2(slices, tmp_path, monkeypatch, capsys):
    real_open = os.open

    def no_lock(path, flags, *args):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_lock)
    dest = tmp_path / "published"
    code, _, err = _wnbench(monkeypatch, capsys, "publish", str(slices[0]), "--to", str(dest))
    assert code == 2 and f"cannot take the publish lock {dest / LOCK_NAME}" in err and "Traceback" not in err
    assert not (dest / "toyint.jsonl.gz").exists()


def test_a_publisher_that_lost_its_lock_replaces_nothing(slices, tmp_path, monkeypatch):
    """A waiter broke this publisher's lock as stale while it merged: it must not replace the archive."""
    dest = tmp_path / "published"
    archive, _, _ = export_published(slices[0], dest)
    before = archive.read_bytes()
    merge = published._merge

    def merge_then_lose_the_lock(*args, **kwargs):
        out = merge(*args, **kwargs)
        (dest / LOCK_NAME).write_text(json.dumps({"token": "a-waiter-broke-it"}))
        return out

    monkeypatch.setattr(published, "_merge", merge_then_lose_the_lock)
    with pytest.raises(PublishLockError, match="lost its lock"):
        export_published(slices[1], dest)
    assert archive.read_bytes() == before and read_archive(archive).count == 2
    assert (dest / LOCK_NAME).exists()  # the new owner's: left alone
    assert not list(dest.glob(".*tmp"))


def test_the_committed_archives_verify():
    """CI guard: every archive under results/published matches the count and digest its plan records."""
    folder = ROOT / "results" / "published"
    archives = find_archives(folder) + find_archives(folder / "pending")
    assert archives, "no committed archives found"
    for path in archives:
        try:
            archive = read_archive(path)
        except ArchiveError as err:
            pytest.fail(err.render())
        assert archive.sealed, f"{path}: no digest recorded in its plan; run wnbench verify --seal"
        assert archive.count == len({r["run_id"] for r in archive.records})


@pytest.mark.slow
def test_parallel_publisher_processes_give_the_union_every_time(slices, tmp_path):
    """20 rounds of three ``wnbench publish`` processes started together into a fresh folder."""
    expected = set().union(*(_ids(s) for s in slices))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for round_ in range(20):
        dest = tmp_path / f"round{round_}"
        procs = [
            subprocess.Popen([sys.executable, "-m", "wnbench.cli", "publish", str(s), "--to", str(dest)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for s in slices
        ]  # fmt: skip
        outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
        assert all(code == 0 for _, code in outcomes), (round_, outcomes)
        archive = dest / "toyint.jsonl.gz"
        assert _published_ids(archive) == expected, f"round {round_}: records lost"
        assert read_archive(archive).count == len(expected)
        assert not (dest / LOCK_NAME).exists()


def test_bad_verify_input_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    code, _, err = _wnbench(monkeypatch, capsys, "verify", str(tmp_path / "nowhere"))
    assert code == 2 and f"{tmp_path / 'nowhere'}: not a published folder" in err
    code, _, err = _wnbench(monkeypatch, capsys, "verify", str(tmp_path))
    assert code == 2 and "no published archives" in err
    with pytest.raises(UserError):
        read_archive(tmp_path / "nothing.jsonl.gz")
