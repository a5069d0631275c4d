"""Job statistics from QEMU's migration progress (libvirt's ``qemuMigrationUpdateJobType``
and job-info fields)."""

from __future__ import annotations

from cookies import JobStatistics
from migrator.drivers.base import MigrationProgress


def job_statistics(progress: MigrationProgress, *, disk_total: int = 0) -> JobStatistics:
    """The job statistics fields libvirt reports, from one ``query-migrate`` sample."""
    page_size = progress.page_size or 4096
    return JobStatistics(
        time_elapsed=progress.total_time,
        time_remaining=None,
        downtime=progress.downtime,
        setup_time=progress.setup_time,
        data_total=progress.total + disk_total,
        data_processed=progress.transferred,
        data_remaining=progress.remaining,
        memory_total=progress.total,
        memory_processed=progress.transferred,
        memory_remaining=progress.remaining,
        memory_constant=progress.duplicate,
        memory_normal=progress.normal,
        memory_normal_bytes=progress.normal_bytes,
        memory_bps=int(progress.mbps * 1_000_000 / 8),
        memory_dirty_rate=progress.dirty_pages_rate,
        memory_page_size=page_size,
        memory_iteration=progress.dirty_sync_count,
        memory_postcopy_requests=progress.postcopy_requests,
        compression_cache=progress.xbzrle_cache_size,
        compression_bytes=progress.xbzrle_bytes,
        compression_pages=progress.xbzrle_pages,
        compression_cache_misses=progress.xbzrle_cache_miss,
        compression_overflow=progress.xbzrle_overflow,
        auto_converge_throttle=progress.cpu_throttle_percentage,
    )
