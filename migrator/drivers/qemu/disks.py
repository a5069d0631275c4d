"""Disks on the command line: a ``-blockdev`` protocol node, a format node, a device per bus."""

from __future__ import annotations

from collections.abc import Sequence

from migrator.domain import (
    ControllerModel,
    ControllerType,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskType,
    DriveAddress,
)
from migrator.domain.defaults import disk_bus
from migrator.drivers.qemu.board import Board
from migrator.drivers.qemu.cmdline import Property, option_string

#: (``cache.direct``, ``cache.no-flush``, ``write-cache``) of each cache mode, as libvirt sets
#: them; the default mode sets nothing.
CACHE_MODES: dict[DiskCache, tuple[bool, bool, bool]] = {
    DiskCache.NONE: (True, False, True),
    DiskCache.WRITETHROUGH: (False, False, False),
    DiskCache.WRITEBACK: (False, False, True),
    DiskCache.DIRECTSYNC: (True, False, False),
    DiskCache.UNSAFE: (False, True, True),
}

#: Units per controller when a disk's address is derived from its name, as libvirt does.
_IDE_UNITS_PER_CONTROLLER = 4
_SATA_UNITS_PER_CONTROLLER = 6
_SCSI_UNITS_PER_CONTROLLER = 7


def disk_index(target_dev: str) -> int:
    """The position a target name stands for: ``vda`` 0, ``vdz`` 25, ``vdaa`` 26."""
    index = 0
    for letter in target_dev[2:]:
        index = index * 26 + ord(letter) - ord("a") + 1
    return index - 1


def disk_args(disks: Sequence[Disk], board: Board) -> list[str]:
    """The ``-blockdev`` and ``-device`` arguments of ``disks`` (defaults filled in).

    Raises:
        UnsupportedConfig: a disk this machine cannot hold: a bus or controller it lacks, a
            read-only IDE/SATA hard disk, a virtio or USB CD-ROM, a hard disk without source.
    """
    argv: list[str] = []
    for position, disk in enumerate(disks):
        argv += _disk(position, disk, board)
    return argv


def _disk(position: int, disk: Disk, board: Board) -> list[str]:
    item = f"disk '{disk.target_dev}'"
    cdrom = disk.device is DiskDevice.CDROM
    argv: list[str] = []
    device: list[Property] = []
    cache = None if disk.cache is None else CACHE_MODES.get(disk.cache)
    if disk.source_path is not None:
        storage, node = f"drive{position}-storage", f"drive{position}-format"
        readonly = disk.readonly or cdrom
        node_cache: list[Property] = []
        if cache is not None:
            node_cache = [("cache.direct", cache[0]), ("cache.no-flush", cache[1])]
        protocol = "host_device" if disk.type is DiskType.BLOCK else "file"
        image_format = (disk.format or DiskFormat.RAW).value
        argv += [
            "-blockdev",
            option_string(
                None,
                [
                    ("driver", protocol),
                    ("filename", disk.source_path),
                    ("node-name", storage),
                    *node_cache,
                    ("read-only", readonly),
                ],
            ),
            "-blockdev",
            option_string(
                None,
                [
                    ("driver", image_format),
                    ("file", storage),
                    ("node-name", node),
                    *node_cache,
                    ("read-only", readonly),
                ],
            ),
        ]
        device.append(("drive", node))
        if cache is not None:
            device.append(("write-cache", cache[2]))
    elif not cdrom:
        raise board.refuse(item, "a hard disk needs a source")
    driver, placement = _device(disk, board, item=item)
    device += placement
    device.append(("id", disk.alias or f"disk-{disk.target_dev}"))
    if disk.serial is not None:
        device.append(("serial", disk.serial))
    return [*argv, "-device", option_string(driver, device)]


def _device(disk: Disk, board: Board, *, item: str) -> tuple[str, list[Property]]:
    """The QEMU device of ``disk`` and where it plugs in."""
    cdrom = disk.device is DiskDevice.CDROM
    index = disk_index(disk.target_dev)
    match disk_bus(disk):
        case DiskBus.VIRTIO:
            if cdrom:
                raise board.refuse(item, "a CD-ROM cannot be on the virtio bus")
            return "virtio-blk-pci", board.placement(disk.address, item=item)
        case DiskBus.IDE:
            if board.q35:
                raise board.refuse(item, "q35 machines have no IDE bus; use bus='sata'")
            _refuse_readonly_ata(disk, board, item=item)
            default = DriveAddress(
                controller=index // _IDE_UNITS_PER_CONTROLLER,
                bus=index % _IDE_UNITS_PER_CONTROLLER // 2,
                unit=index % 2,
            )
            ide = board.drive_address(disk.address, item=item, default=default)
            if ide.controller != 0:
                raise board.refuse(item, f"there is no IDE controller {ide.controller}")
            driver = "ide-cd" if cdrom else "ide-hd"
            return driver, [("bus", f"ide.{ide.bus}"), ("unit", ide.unit)]
        case DiskBus.SATA:
            _refuse_readonly_ata(disk, board, item=item)
            default = DriveAddress(
                controller=index // _SATA_UNITS_PER_CONTROLLER,
                unit=index % _SATA_UNITS_PER_CONTROLLER,
            )
            sata = board.drive_address(disk.address, item=item, default=default)
            if sata.controller == 0 and board.q35:
                ahci = "ide"  # q35's built-in AHCI controller
            else:
                board.controller(ControllerType.SATA, sata.controller, needed_by=item)
                ahci = f"sata{sata.controller}"
            return "ide-cd" if cdrom else "ide-hd", [("bus", f"{ahci}.{sata.unit}")]
        case DiskBus.SCSI:
            default = DriveAddress(
                controller=index // _SCSI_UNITS_PER_CONTROLLER,
                unit=index % _SCSI_UNITS_PER_CONTROLLER,
            )
            scsi = board.drive_address(disk.address, item=item, default=default)
            controller = board.controller(ControllerType.SCSI, scsi.controller, needed_by=item)
            driver = "scsi-cd" if cdrom else "scsi-hd"
            bus: Property = ("bus", f"scsi{scsi.controller}.0")
            if controller.model is ControllerModel.VIRTIO_SCSI:
                return driver, [
                    bus,
                    ("channel", scsi.bus),
                    ("scsi-id", scsi.target),
                    ("lun", scsi.unit),
                ]
            return driver, [bus, ("scsi-id", scsi.unit)]
        case DiskBus.USB:
            if cdrom:
                raise board.refuse(item, "a CD-ROM cannot be on the USB bus")
            return "usb-storage", board.usb_placement(disk.address, item=item)


def _refuse_readonly_ata(disk: Disk, board: Board, *, item: str) -> None:
    if disk.readonly and disk.device is DiskDevice.DISK:
        raise board.refuse(item, "IDE and SATA hard disks cannot be read-only")
