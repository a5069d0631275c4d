"""The kernel image's structure: what QEMU's Multiboot loader and the host read from it."""

from __future__ import annotations

import struct

import pytest

from migrator.testguest.errors import KernelConfigError
from migrator.testguest.kernel import (
    KERNEL_LOAD_ADDR,
    MAX_DIRTY_RATE_MIB_S,
    MAX_VERIFY_PAGES_PER_MS,
    build_kernel,
)
from migrator.testguest.protocol import (
    MAX_WORKING_SET_MIB,
    STATUS_ADDR,
    WORKING_SET_ADDR,
    GuestStatus,
    LineKind,
)

MULTIBOOT_MAGIC = 0x1BADB002
AOUT_KLUDGE = 1 << 16


def _header(image: bytes) -> tuple[int, ...]:
    # the header must be 32-bit aligned within the first 8 KiB
    offset = next(
        i for i in range(0, 8192, 4) if image[i : i + 4] == MULTIBOOT_MAGIC.to_bytes(4, "little")
    )
    return struct.unpack_from("<8I", image, offset)


def test_multiboot_header_describes_the_image() -> None:
    image = build_kernel(working_set_mib=16, dirty_rate_mib_s=10)
    magic, flags, checksum, header, load, load_end, bss_end, entry = _header(image)
    assert (magic + flags + checksum) % (1 << 32) == 0
    assert flags & AOUT_KLUDGE
    assert load == header == KERNEL_LOAD_ADDR
    assert load_end == load + len(image)
    assert bss_end > load_end
    assert load < entry < load_end


@pytest.mark.parametrize(
    ("working_set_mib", "rate", "verify"), [(16, 10, 16), (64, 0, 1), (2, 1, 1024)]
)
def test_status_record_carries_the_configuration(
    working_set_mib: int, rate: int, verify: int
) -> None:
    image = build_kernel(
        working_set_mib=working_set_mib, dirty_rate_mib_s=rate, verify_pages_per_ms=verify
    )
    status = GuestStatus.unpack(image[STATUS_ADDR - KERNEL_LOAD_ADDR :])
    assert status == GuestStatus(
        working_set_pages=working_set_mib * 256,
        dirty_bytes_per_ms=round(rate * 1048576 / 1000),
        verify_pages_per_ms=verify,
    )


def test_idle_guest_records_no_self_check() -> None:
    image = build_kernel(working_set_mib=0, dirty_rate_mib_s=0)
    status = GuestStatus.unpack(image[STATUS_ADDR - KERNEL_LOAD_ADDR :])
    assert (status.working_set_pages, status.verify_pages_per_ms) == (0, 0)


def test_page_tables_identity_map_the_working_set_for_user_mode() -> None:
    image = build_kernel(working_set_mib=MAX_WORKING_SET_MIB, dirty_rate_mib_s=0)

    def entry(table_addr: int, index: int) -> int:
        return int.from_bytes(image[table_addr - KERNEL_LOAD_ADDR + 8 * index :][:8], "little")

    # the boot code loads CR3 with "mov eax, imm32; mov cr3, eax"
    load_cr3 = image.index(bytes.fromhex("0f 22 d8"))
    assert image[load_cr3 - 5] == 0xB8
    cr3 = int.from_bytes(image[load_cr3 - 4 : load_cr3], "little")
    for address in (
        0,
        KERNEL_LOAD_ADDR,
        STATUS_ADDR,
        WORKING_SET_ADDR,
        WORKING_SET_ADDR + MAX_WORKING_SET_MIB * 2**20 - 1,
    ):
        pdpt = entry(cr3, address >> 39) & ~0xFFF
        directory = entry(pdpt, (address >> 30) & 511)
        assert directory & 0x7 == 0x7
        page = entry(directory & ~0xFFF, (address >> 21) & 511)
        assert page & 0x87 == 0x87  # present, writable, user, 2 MiB
        assert page & ~0x1FFFFF & ((1 << 52) - 1) == address & ~0x1FFFFF


def test_image_holds_every_line_prefix() -> None:
    image = build_kernel(working_set_mib=1, dirty_rate_mib_s=0)
    for kind in LineKind:
        assert kind.value in image


def test_build_is_deterministic_and_depends_on_the_configuration() -> None:
    paced = build_kernel(working_set_mib=8, dirty_rate_mib_s=5)
    assert paced == build_kernel(working_set_mib=8, dirty_rate_mib_s=5)
    assert paced != build_kernel(working_set_mib=8, dirty_rate_mib_s=0)


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"working_set_mib": -1, "dirty_rate_mib_s": 0}, "working_set_mib"),
        ({"working_set_mib": MAX_WORKING_SET_MIB + 1, "dirty_rate_mib_s": 0}, "working_set_mib"),
        ({"working_set_mib": 1, "dirty_rate_mib_s": -5}, "dirty_rate_mib_s"),
        ({"working_set_mib": 1, "dirty_rate_mib_s": MAX_DIRTY_RATE_MIB_S + 1}, "dirty_rate_mib_s"),
        (
            {"working_set_mib": 1, "dirty_rate_mib_s": 0, "verify_pages_per_ms": -1},
            "verify_pages_per_ms",
        ),
        (
            {
                "working_set_mib": 1,
                "dirty_rate_mib_s": 0,
                "verify_pages_per_ms": MAX_VERIFY_PAGES_PER_MS + 1,
            },
            "verify_pages_per_ms",
        ),
    ],
)
def test_out_of_range_arguments_are_refused(arguments: dict[str, int], parameter: str) -> None:
    with pytest.raises(KernelConfigError, match=parameter) as refused:
        build_kernel(**arguments)
    assert refused.value.parameter == parameter
    assert refused.value.value == arguments[parameter]


def test_largest_configuration_builds() -> None:
    build_kernel(
        working_set_mib=MAX_WORKING_SET_MIB,
        dirty_rate_mib_s=MAX_DIRTY_RATE_MIB_S,
        verify_pages_per_ms=MAX_VERIFY_PAGES_PER_MS,
    )
