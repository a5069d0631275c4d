"""``migrator demo`` as a user runs it: a subprocess that must migrate the guest there and
back, print the summary, and leave nothing running or on disk, also when interrupted.

Nothing here is timed: the guard only stops a broken demo from hanging the suite.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

GUARD_S = 180
ROWS = ("host-a -> host-b", "host-b -> host-a")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The demo's TMPDIR: short, since unix socket paths under it are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="md", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def demo_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "migrator", "demo", *arguments]


def demo_env(scratch: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1", **extra}


def run_demo(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the demo to its end; if it hangs, interrupt it (so that it stops what it
    started) before the test fails."""
    process = subprocess.Popen(
        demo_command(*arguments),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=GUARD_S)
        finally:
            process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def processes_under(directory: Path) -> list[str]:
    """The command lines of running processes that name a path under ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(os.fsencode(directory) in argument for argument in arguments):
            found.append(b" ".join(arguments).decode(errors="replace"))
    return found


def assert_nothing_left(scratch: Path) -> None:
    assert processes_under(scratch) == []
    assert list(scratch.iterdir()) == []


def summary_rows(output: str) -> list[list[str]]:
    rows = [
        line
        for line in output.splitlines()
        if line.startswith("│") and any(row in line for row in ROWS)
    ]
    return [[cell.strip() for cell in row.strip("│ ").split("│")] for row in rows]


@pytest.mark.qemu
def test_the_demo_migrates_the_guest_there_and_back(scratch: Path) -> None:
    result = run_demo(env=demo_env(scratch))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "QEMU downtime" in result.stdout
    rows = summary_rows(result.stdout)
    assert [row[0] for row in rows] == list(ROWS), output
    for _, total, downtime, gap, moved in rows:
        assert total.endswith(("ms", " s")), output
        assert downtime.endswith("ms"), output
        assert gap.endswith("ms"), output  # the guest's heartbeat came back on each host
        assert moved.endswith("MiB"), output
    assert "100%" in result.stderr  # the progress bar filled
    assert_nothing_left(scratch)


@pytest.mark.qemu
def test_ctrl_c_mid_migration_stops_everything(scratch: Path) -> None:
    # At 4 MiB/s a guest rewriting 32 MiB at 16 MiB/s never converges: the interrupt
    # always lands while the first migration runs.
    process = subprocess.Popen(
        demo_command("--bandwidth", "4"),
        env=demo_env(scratch),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = lines_of(process)
        seen: list[str] = []
        while not any("migration 1" in line for line in seen):
            line = lines.get(timeout=GUARD_S)
            assert line is not None, "".join(seen)
            seen.append(line)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=GUARD_S)
        while (line := lines.get(timeout=GUARD_S)) is not None:
            seen.append(line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(seen)
    assert process.returncode == 1, output
    assert "Aborted!" in output
    assert "QEMU downtime" not in output
    assert_nothing_left(scratch)


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The lines ``process`` writes, as they come; None once its output has ended."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_without_qemu_the_demo_runs_on_the_simulator(scratch: Path) -> None:
    # Only the interpreter's own directory on PATH: qemu-system-x86_64 cannot be found.
    result = run_demo(env=demo_env(scratch, PATH=str(Path(sys.executable).parent)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "qemu-system-x86_64 is not installed" in " ".join(result.stdout.split())
    rows = summary_rows(result.stdout)
    assert [row[0] for row in rows] == list(ROWS), output
    assert all(row[3] == "-" for row in rows), output  # a simulated guest has no heartbeat
    assert_nothing_left(scratch)
