"""Save and restore of a 1 GiB test guest with 512 MiB of non-zero memory on real QEMU, next
to ``dd`` writing and reading as many bytes on the same disk.

Every run starts a fresh guest, waits until it has rewritten its whole 512 MiB working set,
and then, for each variant (``raw``: QEMU writes the image file itself; ``direct``: through
the O_DIRECT writer; ``zstd``: through ``zstd -c``):

- save: ``SaveOps.save`` from the call to its return (pause, QEMU's stream into the image,
  fsync, complete magic, QEMU stopped);
- restore: the image dropped from the page cache (``posix_fadvise DONTNEED``), then
  ``SaveOps.restore`` from the call to the guest running, QEMU's start included (shown on
  its own too); the restored guest's memory is then checked, untimed, and a run that lost
  any of it stops the benchmark;
- dd: ``dd if=/dev/zero of=F bs=1M count=N conv=fsync`` (``oflag=direct`` for ``direct``),
  then, with F dropped from the cache, ``dd if=F of=/dev/null bs=1M``; N is the image's size
  in MiB (for ``zstd``, the stream's size: what a raw image of the guest would hold).

Throughput is the size of QEMU's stream (``data_processed`` of the save; the image's size
for a raw image) over the wall time, in MiB/s, and ``dd`` moves as many bytes. The images
go to ``--dir`` (default: a new directory under the system's temporary directory).

Run: ``.venv/bin/python -m benchmarks.save_bench [--runs N] [--variants raw,direct,zstd]
[--dir DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from migrator.saveimage import ImageFormat
from migrator.saving import SaveOps
from migrator.testguest.vm import default_bios, detect_accel, guest_memory_mib
from tests.integration.qemu_cluster import GuestShape, QemuCluster

TIMEOUT_S = 300
NAME = "vm"
MiB = 1 << 20
#: 1 GiB of RAM, 512 MiB of it rewritten by the guest (so non-zero) before each save.
SHAPE = GuestShape(memory_mib=1024, working_set_mib=512, dirty_rate_mib_s=256)
assert guest_memory_mib(SHAPE.working_set_mib) <= SHAPE.memory_mib


@dataclass(frozen=True)
class Variant:
    label: str
    image_format: ImageFormat
    bypass_cache: bool


VARIANTS = {
    "raw": Variant("raw", ImageFormat.RAW, bypass_cache=False),
    "direct": Variant("raw, O_DIRECT", ImageFormat.RAW, bypass_cache=True),
    "zstd": Variant("zstd", ImageFormat.ZSTD, bypass_cache=False),
}


@dataclass(frozen=True)
class Run:
    stream_bytes: int
    image_bytes: int
    save_s: float
    restore_s: float
    restore_qemu_start_s: float
    dd_write_s: float
    dd_read_s: float


class BrokenRun(RuntimeError):
    """The restored guest's memory was damaged: the figures mean nothing."""


def drop_from_cache(path: Path) -> None:
    """Drop ``path``'s (clean, synced) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def dd_run(path: Path, *, size: int, direct: bool) -> tuple[float, float]:
    """Seconds ``dd`` takes to write ``size`` bytes (rounded up to MiB) to ``path`` and to
    read them back from the disk."""
    count = -(-size // MiB)
    flag = ["oflag=direct"] if direct else ["conv=fsync"]
    write_s = timed(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", *flag])
    drop_from_cache(path)
    read_s = timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"])
    path.unlink()
    return write_s, read_s


async def one_run(variant: Variant, directory: Path) -> Run:
    cluster_dir = directory / "cluster"
    cluster_dir.mkdir()
    image = directory / "vm.img"
    async with QemuCluster(cluster_dir) as cluster:
        ops = SaveOps(cluster.a, managed_save_dir=directory / "managed")
        await cluster.start(NAME, SHAPE, warm=True)
        began = time.perf_counter()
        saved = await ops.save(
            NAME, image, compression=variant.image_format, bypass_cache=variant.bypass_cache
        )
        save_s = time.perf_counter() - began
        assert saved.data_processed is not None
        drop_from_cache(image)
        began = time.perf_counter()
        await ops.restore(image)
        restore_s = time.perf_counter() - began
        memory = await cluster.memory_check(cluster.instance(cluster.a, NAME), NAME)
        if not memory.intact:
            raise BrokenRun(f"pages damaged after the restore: {memory.bad_pages}")
        qemu_start_s = cluster.driver(cluster.a).start_seconds[-1]
    size = image.stat().st_size
    image.unlink()
    stream = saved.data_processed
    dd_write_s, dd_read_s = dd_run(directory / "dd.bin", size=stream, direct=variant.bypass_cache)
    return Run(
        stream_bytes=stream,
        image_bytes=size,
        save_s=save_s,
        restore_s=restore_s,
        restore_qemu_start_s=qemu_start_s,
        dd_write_s=dd_write_s,
        dd_read_s=dd_read_s,
    )


def row(label: str, seconds: list[float], sizes: list[int]) -> str:
    rates = [size / MiB / s for size, s in zip(sizes, seconds, strict=True)]
    return (
        f"  {label:<34} {statistics.median(rates):>9.0f} {min(rates):>9.0f} "
        f"{max(rates):>9.0f} {statistics.median(seconds) * 1000:>10.0f}"
    )


def report(variant: Variant, runs: list[Run]) -> None:
    sizes = [run.stream_bytes for run in runs]
    print(
        f"\n{variant.label}: {len(runs)} runs, stream {statistics.median(sizes) / MiB:.0f} MiB, "
        f"image {statistics.median(r.image_bytes for r in runs) / MiB:.0f} MiB (medians); "
        "MiB/s of stream, and milliseconds"
    )
    print(f"  {'':<34} {'median':>9} {'min':>9} {'max':>9} {'median ms':>10}")
    print(row("save", [r.save_s for r in runs], sizes))
    print(row("dd write", [r.dd_write_s for r in runs], sizes))
    print(row("restore (QEMU start included)", [r.restore_s for r in runs], sizes))
    restore_load = [r.restore_s - r.restore_qemu_start_s for r in runs]
    print(row("restore without the QEMU start", restore_load, sizes))
    print(row("dd read (cache dropped)", [r.dd_read_s for r in runs], sizes))


async def main(*, runs: int, variants: list[Variant], directory: Path | None) -> None:
    print(
        f"accelerator: {detect_accel().value}, firmware: {default_bios()}, guest: "
        f"{SHAPE.memory_mib} MiB with {SHAPE.working_set_mib} MiB non-zero, runs: {runs}, "
        f"disk: {directory or tempfile.gettempdir()}"
    )
    for variant in variants:
        results: list[Run] = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="save-bench-", dir=directory) as run_dir:
                async with asyncio.timeout(TIMEOUT_S):
                    results.append(await one_run(variant, Path(run_dir)))
        report(variant, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="raw,direct", help="of: " + ",".join(VARIANTS))
    parser.add_argument("--dir", type=Path, default=None)
    arguments = parser.parse_args()
    chosen = [VARIANTS[name] for name in arguments.variants.split(",")]
    if arguments.dir is not None:
        arguments.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(runs=arguments.runs, variants=chosen, directory=arguments.dir))
