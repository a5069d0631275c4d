"""Parameter table speed: a parameter set -> the QMP arguments of a migration job.

The set is what a compressed, auto-converging post-copy migration with a bandwidth limit and
TLS host name builds on the source. "capabilities + parameters" is what the engine computes
before ``migrate``; the other forms are shown for scale. Prints the median time of each
operation in microseconds; the target applies to the QMP arguments.

Run: ``.venv/bin/python -m benchmarks.params_bench``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from params import (
    TABLE,
    Kind,
    MigrationFlag,
    ParamSet,
    Side,
    from_typed,
    from_wire,
    from_xml,
    to_qmp_capabilities,
    to_qmp_parameters,
    to_wire,
    to_xml,
)

ROUNDS = 25
CALLS_PER_ROUND = 400
TARGET_US = 50.0

#: What QEMU 7.2 lists in query-migrate-capabilities: every capability row.
SUPPORTED = tuple(row.key for row in TABLE.values() if row.kind is Kind.CAPABILITY)

FLAGS = (
    MigrationFlag.LIVE
    | MigrationFlag.PEER2PEER
    | MigrationFlag.AUTO_CONVERGE
    | MigrationFlag.POSTCOPY
    | MigrationFlag.TLS
)

TYPED: dict[str, object] = {
    "migrate_uri": "tcp://compute-18.example.net:49152",
    "bandwidth": 1000,
    "bandwidth.postcopy": 500,
    "compression": ["mt", "xbzrle"],
    "compression.mt.level": 1,
    "compression.mt.threads": 8,
    "compression.mt.dthreads": 2,
    "compression.xbzrle.cache": 64 * 1024 * 1024,
    "auto_converge.initial": 20,
    "auto_converge.increment": 10,
    "tls.destination": "compute-18.example.net",
}


def median_us(operation: Callable[[], object]) -> float:
    """Median over ROUNDS of the mean time of one call, in microseconds."""
    per_call = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS_PER_ROUND):
            operation()
        per_call.append((time.perf_counter() - start) / CALLS_PER_ROUND * 1e6)
    return statistics.median(per_call)


def capabilities(pset: ParamSet) -> list[dict[str, object]]:
    """The ``migrate-set-capabilities`` list for the source, the peer supporting everything."""
    return to_qmp_capabilities(
        pset, supported=SUPPORTED, remote_supported=SUPPORTED, side=Side.SOURCE
    )


def qmp_arguments(pset: ParamSet) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Both argument sets the engine sends before ``migrate``."""
    return capabilities(pset), to_qmp_parameters(pset)


def main() -> None:
    pset = from_typed(TYPED, flags=FLAGS, side=Side.SOURCE)
    xml = to_xml(pset)
    wire = to_wire(pset)
    operations: list[tuple[str, Callable[[], object], float | None]] = [
        ("QMP capabilities + parameters", lambda: qmp_arguments(pset), TARGET_US),
        ("QMP capabilities", lambda: capabilities(pset), None),
        ("QMP parameters", lambda: to_qmp_parameters(pset), None),
        ("typed -> set", lambda: from_typed(TYPED, flags=FLAGS, side=Side.SOURCE), None),
        ("set -> <migParams>", lambda: to_xml(pset), None),
        ("<migParams> -> set", lambda: from_xml(xml), None),
        ("set -> wire", lambda: to_wire(pset), None),
        ("wire -> set", lambda: from_wire(wire), None),
    ]
    table = Table(title=f"params: median of {ROUNDS} rounds x {CALLS_PER_ROUND} calls")
    for header in ("operation", "median (us)", "target (us)", "ok"):
        table.add_column(header, justify="left" if header == "operation" else "right")
    for name, operation, target in operations:
        median = median_us(operation)
        verdict = "" if target is None else ("yes" if median <= target else "NO")
        table.add_row(name, f"{median:.1f}", "" if target is None else f"{target:.0f}", verdict)
    Console().print(table)


if __name__ == "__main__":
    main()
