"""One simulated host with its save operations, and helpers to look inside image files."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from cookies import generate_signing_key
from migrator.domain import Domain, parse_domain
from migrator.drivers.base import Instance, StartMode
from migrator.drivers.sim import SimDriver, SimWorld
from migrator.runtime.host import Host
from migrator.saveimage import HEADER_SIZE, Magic, SaveHeader
from migrator.saving import SaveOps
from tests.drivers.simkit import MiB, domain

HOST = "host-a"


class SimSaving:
    """A simulated host ``host-a``, its :class:`SaveOps` (managed saves in
    ``directory/managed``) and a directory for images."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.world = SimWorld()
        self.host = Host(
            name=HOST,
            uuid=str(uuid.uuid4()),
            driver=SimDriver(self.world, HOST),
            signing_key=generate_signing_key(),
        )
        self.ops = SaveOps(self.host, managed_save_dir=directory / "managed")

    def image(self, name: str = "vm") -> Path:
        return self.directory / f"{name}.img"

    async def start(
        self,
        definition: Domain | str | None = None,
        *,
        persistent: bool = True,
        paused: bool = False,
    ) -> Instance:
        """Start a guest (``vm``, 64 MiB, unless given) and record it as running here;
        ``paused``: it ran, then was paused."""
        if definition is None:
            definition = domain("vm", memory_bytes=64 * MiB)
        elif isinstance(definition, str):
            definition = parse_domain(definition)
        if persistent:
            self.host.define(definition)
        instance = await self.host.driver.start(definition, mode=StartMode.RUNNING)
        if paused:
            await instance.pause()
        self.host.add_guest(definition, instance)
        return instance


def header_of(path: Path) -> SaveHeader:
    """The header of the image at ``path``, whatever its magic."""
    raw = bytearray(path.read_bytes()[:HEADER_SIZE])
    magic = Magic(bytes(raw[:16]))
    raw[:16] = Magic.COMPLETE.value
    return dataclasses.replace(SaveHeader.unpack(bytes(raw)), magic=magic)


def set_magic(path: Path, magic: bytes) -> None:
    """Overwrite the first 16 bytes of ``path``."""
    with path.open("r+b") as file:
        file.write(magic)
