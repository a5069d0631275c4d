"""Hypervisor drivers: ``qemu`` (real QEMU through qemu.qmp) and ``sim`` (deterministic)."""
