"""The test guest: a tiny bootable kernel built in Python, and the host-side tools that watch it.

* :func:`~migrator.testguest.kernel.build_kernel` builds a Multiboot image that rewrites a
  working set at a chosen rate, writes a heartbeat line to COM1 every millisecond and re-reads
  its memory to check it (:mod:`~migrator.testguest.protocol` defines what both sides share);
* :class:`~migrator.testguest.heartbeat.HeartbeatMonitor` follows the serial output of one or
  more QEMU processes and reports the largest pause between heartbeats;
* :func:`~migrator.testguest.memcheck.verify_memory_dump` checks a dump of guest memory;
* :class:`~migrator.testguest.vm.GuestVm` starts QEMU with the guest, and
  :func:`~migrator.testguest.rawmigration.migrate_raw` live-migrates it with raw QMP: a harness
  for tests and benchmarks, not the engine's QEMU driver.

Errors derive from :class:`~migrator.testguest.errors.GuestHarnessError`.
"""
