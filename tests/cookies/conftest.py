from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import (
    Capability,
    Cookie,
    Graphics,
    GraphicsType,
    JobOperation,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    generate_signing_key,
)

FIXTURES = Path(__file__).parent / "fixtures"
LIBVIRT_COOKIE = FIXTURES / "libvirt-begin-cookie.xml"

GUEST_UUID = "5b8e3f2a-9c41-4d7e-8a0b-6f1e2d3c4b5a"
SOURCE_HOST = "1f3c9a7e-2b5d-4c8f-9e01-a2b3c4d5e6f7"
DESTINATION_HOST = "7d0c2e41-5a9b-4f3e-8c6d-1b2a3c4d5e6f"
DOMAIN_XML = '<domain type="kvm"><name>vm1</name><memory unit="KiB">1048576</memory></domain>'


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def cookie() -> Cookie:
    """A perform-like cookie with most features."""
    return Cookie(
        name="vm1",
        uuid=GUEST_UUID,
        hostname="src.example",
        hostuuid=SOURCE_HOST,
        graphics=Graphics(type=GraphicsType.SPICE, port=5901, tls_port=5902, listen="192.0.2.1"),
        lockstate=LockState("sanlock", b"vm1:lease:0"),
        persistent=DOMAIN_XML,
        nbd=Nbd(port=49153, disks=(NbdDisk("vda", 21474836480),)),
        statistics=JobStatistics(
            time_elapsed=1200, downtime=40, operation=JobOperation.MIGRATION_OUT, success=True
        ),
        capabilities=(Capability("xbzrle"), Capability("pause-before-switchover", True)),
    )
