"""The pure core never imports I/O: no asyncio, sockets, subprocesses, files or drivers.

This is what keeps scenario replay, property tests and the simulator cheap and exact.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Packages and modules that make up the pure core.
PURE = [
    "params",
    "cookies",
    "xmlsafe",
    "migrator/domain",
    "migrator/phases",
    "migrator/saveimage/header.py",
    "migrator/policy",
    "migrator/status.py",
]

#: Top-level modules the pure core must not import.
FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "multiprocessing",
    "os",
    "shutil",
    "tempfile",
    "pathlib",
    "signal",
    "qemu",
    "transport",
}

#: Parts of migrator that do I/O; the pure core must not import them either.
FORBIDDEN_PREFIXES = ("migrator.drivers", "migrator.daemon", "migrator.runtime", "migrator.cli")


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        path = ROOT / entry
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            files.append(path)
    return files


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pure_core_exists() -> None:
    assert _pure_files(), "no pure-core files found: the PURE list is stale"


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_io(path: Path) -> None:
    bad = sorted(
        name
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN_PREFIXES)
    )
    assert not bad, f"{path.relative_to(ROOT)} imports I/O modules: {bad}"
