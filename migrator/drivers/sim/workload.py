"""What a simulated guest does to its memory."""

from __future__ import annotations

from dataclasses import dataclass

from migrator.drivers.sim.errors import SimError


@dataclass(frozen=True)
class Workload:
    """A guest's memory behaviour while its CPUs run.

    Attributes:
        working_set_bytes: the memory the guest keeps rewriting; a later pre-copy pass never
            has more than this to send again.
        dirty_rate_bytes_s: how fast the unthrottled guest writes to its working set. In
            post-copy it is also how fast the guest touches memory on the destination.
        nonzero_bytes: memory holding data; the rest is zero pages, which pre-copy skips.
            ``None`` means all of the guest's memory.
        xbzrle_ratio: size of an xbzrle-encoded page over the page size; at 1 or more the
            encoding overflows and the page goes out whole.

    Raises:
        SimError: a negative size or rate, or a ratio that is not positive.
    """

    working_set_bytes: int = 0
    dirty_rate_bytes_s: int = 0
    nonzero_bytes: int | None = None
    xbzrle_ratio: float = 0.25

    def __post_init__(self) -> None:
        for name in ("working_set_bytes", "dirty_rate_bytes_s"):
            if getattr(self, name) < 0:
                raise SimError(f"workload {name} must not be negative", field=name)
        if self.nonzero_bytes is not None and self.nonzero_bytes < 0:
            raise SimError("workload nonzero_bytes must not be negative", field="nonzero_bytes")
        if not self.xbzrle_ratio > 0:
            raise SimError("workload xbzrle_ratio must be positive", field="xbzrle_ratio")


#: A guest that writes nothing.
IDLE = Workload()
