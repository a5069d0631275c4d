"""migrator: live migration, save/restore and snapshots of QEMU/KVM virtual machines."""

__version__ = "0.1.0"
