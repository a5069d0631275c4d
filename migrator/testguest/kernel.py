"""The test guest kernel: a Multiboot image that dirties memory, beats a heart and checks itself.

QEMU loads the image with ``-kernel`` (Multiboot with the a.out kludge: the header gives the load
addresses, so no ELF toolchain is involved) and enters it in 32-bit protected mode. The boot code
switches to 64-bit long mode with identity-mapped 2 MiB pages and drops to ring 3 with IOPL 3:
some KVM implementations (the pagetable-based PVM, for one) emulate kernel-mode guest code one
instruction at a time and run only 64-bit user mode natively, and IOPL 3 keeps port I/O allowed.

Then the guest loops forever, with no interrupts:

* it calibrates the TSC against PIT channel 2 at boot and measures time with ``rdtsc``;
* every millisecond (a *tick*) it writes a heartbeat line to COM1 and re-reads
  ``verify_pages_per_ms`` pages of its working set with ``repe scasq``, reporting damage;
* between ticks it rewrites its working set page by page with ``rep stosq``, as fast as it can
  or paced by a byte credit that each tick tops up in proportion to the TSC time elapsed.

:mod:`migrator.testguest.protocol` defines the memory layout, the status record, the page pattern
and the serial lines that the host reads back.

Registers in the main loop::

    r15 status record   r14 TSC ticks per ms   r13 TSC at the last tick   r12 byte credit
    rbx next page to write   r11 pass term of the pass being written
    r10, r9 pass term and page multiplier of the previous pass (both 0 before the first pass)
    rbp next page to verify   r8 pages left to verify in this tick
"""

from __future__ import annotations

import struct

from migrator.testguest.errors import KernelConfigError
from migrator.testguest.protocol import (
    MAX_WORKING_SET_MIB,
    MIB,
    PAGE_SIZE,
    PATTERN_PAGE_MULTIPLIER,
    PATTERN_PASS_STEP,
    STATUS_ADDR,
    WORKING_SET_ADDR,
    GuestStatus,
    LineKind,
    StatusField,
)
from migrator.testguest.x86 import AluOp, Assembler, Cond, ControlReg, Label, Mem, Reg

#: Where QEMU loads the image.
KERNEL_LOAD_ADDR = 0x100000
#: The fastest pace that can be asked for; beyond it the byte credit would not fit 32 bits.
MAX_DIRTY_RATE_MIB_S = 100_000
#: The most pages the guest may re-read per tick.
MAX_VERIFY_PAGES_PER_MS = 1024

_PML4_ADDR = 0x102000
_PDPT_ADDR = 0x103000
_PD_ADDR = 0x104000  # four page directories: 4 GiB of 2 MiB pages
_LINE_BUFFER_END = 0x108040  # bss: digits are written backwards from here
_STACK_TOP = 0x10A000  # bss
_MAPPED_GIB = 4
_IMAGE_END = _PD_ADDR + _MAPPED_GIB * PAGE_SIZE

_MULTIBOOT_MAGIC = 0x1BADB002
_MULTIBOOT_AOUT_KLUDGE = 1 << 16
_MULTIBOOT_HEADER = struct.Struct("<8I")

_KERNEL_CODE = 0x08
_USER_CODE = 0x10 | 3
_USER_DATA = 0x18 | 3
_GDT = (
    0,
    0x00209A0000000000,  # 64-bit code, DPL 0
    0x0020FA0000000000,  # 64-bit code, DPL 3
    0x0000F20000000000,  # data, DPL 3
)
_CR0_PE_ET_PG = 0x80000011
_CR4_PAE = 1 << 5
_MSR_EFER = 0xC0000080
_EFER_LME = 1 << 8
_RFLAGS_IOPL3 = 0x3002  # IOPL 3, interrupts off
_PAGE_PRESENT_WRITE_USER = 0x7
_PAGE_LARGE = 0x80

_COM1 = 0x3F8
_SERIAL_SETUP = (  # (register, value): no interrupts, DLAB for 115200 baud, 8N1, FIFO on
    (1, 0x00),
    (3, 0x80),
    (0, 0x01),
    (1, 0x00),
    (3, 0x03),
    (2, 0x07),
)
_SERIAL_LINE_STATUS = 5
_LINE_STATUS_TRANSMITTER_EMPTY = 0x40
_PIT_HZ = 1_193_182
_PIT_CHANNEL2 = 0x42
_PIT_COMMAND = 0x43
_PIT_CHANNEL2_ONE_SHOT = 0xB0  # channel 2, low then high byte, mode 0, binary
_PORT_B = 0x61  # bit 0: channel 2 gate, bit 1: speaker, bit 5: channel 2 output
_CALIBRATION_COUNT = 5_966  # 5 ms of PIT ticks
_CALIBRATION_ATTEMPTS = 4
_TICK_CATCH_UP_MS = 8  # a longer pause (a stopped VM) earns no more credit than this
_QWORDS_PER_PAGE = PAGE_SIZE // 8


def build_kernel(
    *, working_set_mib: int, dirty_rate_mib_s: int, verify_pages_per_ms: int = 16
) -> bytes:
    """Build the guest kernel image for QEMU's ``-kernel``.

    Args:
        working_set_mib: size of the memory the guest rewrites (0: an idle guest that only
            writes heartbeats).
        dirty_rate_mib_s: how fast it rewrites it, in MiB/s (0: as fast as it can).
        verify_pages_per_ms: how many working-set pages it re-reads and checks per
            millisecond (0: no self-check).

    The guest's RAM must reach past the working set, which starts at ``WORKING_SET_ADDR``
    (:func:`migrator.testguest.vm.guest_memory_mib` gives the least size).

    Raises:
        KernelConfigError: an argument is out of range.
    """
    _check_range("working_set_mib", working_set_mib, MAX_WORKING_SET_MIB)
    _check_range("dirty_rate_mib_s", dirty_rate_mib_s, MAX_DIRTY_RATE_MIB_S)
    _check_range("verify_pages_per_ms", verify_pages_per_ms, MAX_VERIFY_PAGES_PER_MS)
    status = GuestStatus(
        working_set_pages=working_set_mib * MIB // PAGE_SIZE,
        dirty_bytes_per_ms=(dirty_rate_mib_s * MIB + 500) // 1000,
        verify_pages_per_ms=verify_pages_per_ms if working_set_mib else 0,
    )
    asm = Assembler(KERNEL_LOAD_ADDR)
    entry = KERNEL_LOAD_ADDR + _MULTIBOOT_HEADER.size
    asm.data(
        _MULTIBOOT_HEADER.pack(
            _MULTIBOOT_MAGIC,
            _MULTIBOOT_AOUT_KLUDGE,
            -(_MULTIBOOT_MAGIC + _MULTIBOOT_AOUT_KLUDGE) & 0xFFFFFFFF,
            KERNEL_LOAD_ADDR,  # the header's own address
            KERNEL_LOAD_ADDR,
            _IMAGE_END,
            _STACK_TOP,  # end of bss
            entry,
        )
    )
    _Program(asm, status).emit()
    asm.pad_to(STATUS_ADDR)
    asm.data(status.pack())
    asm.pad_to(_PML4_ADDR)
    asm.data(_page_tables())
    return asm.assemble()


def _check_range(parameter: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise KernelConfigError(
            f"{parameter} must be between 0 and {maximum}, got {value}",
            parameter=parameter,
            value=value,
        )


def _page_tables() -> bytes:
    """PML4, PDPT and page directories identity-mapping the low 4 GiB, user-accessible."""
    flags = _PAGE_PRESENT_WRITE_USER
    pml4 = struct.pack("<Q", _PDPT_ADDR | flags).ljust(PAGE_SIZE, b"\0")
    pdpt = b"".join(
        struct.pack("<Q", (_PD_ADDR + i * PAGE_SIZE) | flags) for i in range(_MAPPED_GIB)
    ).ljust(PAGE_SIZE, b"\0")
    directories = b"".join(
        struct.pack("<Q", (i << 21) | flags | _PAGE_LARGE) for i in range(_MAPPED_GIB * 512)
    )
    return pml4 + pdpt + directories


def _status(field: StatusField) -> Mem:
    return Mem(Reg.R15, field)


class _Program:
    """Emits the code, in the order it sits in the image."""

    def __init__(self, asm: Assembler, status: GuestStatus) -> None:
        self.asm = asm
        self.status = status
        self.prefixes = {kind: Label(f"prefix {kind.name}") for kind in LineKind}
        self.emit_line = Label("emit_line")
        self.main = Label("main")
        self.tick = Label("tick")
        self.gdtr = Label("gdtr")

    def emit(self) -> None:
        self._boot()
        self._setup()
        self._main_loop()
        self._tick()
        self._emit_line()
        self._data()

    def _boot(self) -> None:
        """32-bit protected mode to 64-bit ring 3."""
        asm = self.asm
        long_mode = Label("long_mode")
        user_main = Label("user_main")
        asm.mov_imm(Reg.RSP, _STACK_TOP)
        asm.mov_imm(Reg.RAX, _CR4_PAE)
        asm.mov_to_cr(ControlReg.CR4, Reg.RAX)
        asm.mov_imm(Reg.RAX, _PML4_ADDR)
        asm.mov_to_cr(ControlReg.CR3, Reg.RAX)
        asm.mov_imm(Reg.RCX, _MSR_EFER)
        asm.mov_imm(Reg.RAX, _EFER_LME)
        asm.mov_imm(Reg.RDX, 0)
        asm.wrmsr()
        asm.mov_imm(Reg.RAX, _CR0_PE_ET_PG)
        asm.mov_to_cr(ControlReg.CR0, Reg.RAX)
        asm.lgdt(self.gdtr)
        asm.jmp_far(_KERNEL_CODE, long_mode)
        asm.bind(long_mode)
        for value in (_USER_DATA, _STACK_TOP, _RFLAGS_IOPL3, _USER_CODE):
            asm.push_imm(value)
        asm.push_imm(user_main)
        asm.iretq()
        asm.bind(user_main)

    def _setup(self) -> None:
        """Serial port, TSC calibration, initial register values."""
        asm = self.asm
        asm.mov_imm(Reg.R15, STATUS_ADDR)
        for register, value in _SERIAL_SETUP:
            asm.mov_imm(Reg.RDX, _COM1 + register)
            asm.mov_imm(Reg.RAX, value)
            asm.out_al_dx()
        self._calibrate_tsc()
        asm.mov(Reg.R14, Reg.RAX)
        asm.store(_status(StatusField.TSC_PER_MS), Reg.R14)
        self._read_tsc()
        asm.mov(Reg.R13, Reg.RAX)
        for register in (Reg.R12, Reg.RBX, Reg.R10, Reg.R9, Reg.RBP):
            asm.mov_imm(register, 0)
        asm.mov_imm(Reg.R11, PATTERN_PASS_STEP)

    def _calibrate_tsc(self) -> None:
        """RAX = TSC ticks per millisecond, timed against PIT channel 2 one-shots.

        The vCPU may be descheduled at any moment, so each attempt brackets the start and the
        end of the one-shot between two TSC reads; the attempt with the tightest brackets wins,
        and its midpoints give the estimate. Clobbers RBX, RCX, RDX, RBP and R8-R12.
        """
        asm = self.asm
        attempt, poll, expired, not_better = (
            Label(name) for name in ("attempt", "poll", "expired", "not_better")
        )
        asm.mov_imm(Reg.RBX, _CALIBRATION_ATTEMPTS)
        asm.mov_imm(Reg.R11, 0)
        asm.dec(Reg.R11)  # tightest bracket so far: none
        asm.bind(attempt)
        asm.in_al(_PORT_B)  # gate channel 2 on, speaker off
        asm.alu(AluOp.AND, Reg.RAX, ~0x03)
        asm.alu(AluOp.OR, Reg.RAX, 0x01)
        asm.out_al(_PORT_B)
        asm.mov_imm(Reg.RAX, _PIT_CHANNEL2_ONE_SHOT)
        asm.out_al(_PIT_COMMAND)
        asm.mov_imm(Reg.RAX, _CALIBRATION_COUNT & 0xFF)
        asm.out_al(_PIT_CHANNEL2)
        self._read_tsc()
        asm.mov(Reg.R8, Reg.RAX)
        asm.mov_imm(Reg.RAX, _CALIBRATION_COUNT >> 8)
        asm.out_al(_PIT_CHANNEL2)  # the count starts now
        self._read_tsc()
        asm.mov(Reg.R9, Reg.RAX)
        asm.mov(Reg.R10, Reg.R9)  # R10: TSC before the last read that saw the output low
        asm.bind(poll)
        self._read_tsc()
        asm.mov(Reg.RBP, Reg.RAX)
        asm.in_al(_PORT_B)
        asm.test(Reg.RAX, 0x20)
        asm.jcc(Cond.NOT_EQUAL, expired)
        asm.mov(Reg.R10, Reg.RBP)
        asm.jmp(poll)
        asm.bind(expired)
        self._read_tsc()
        # bracket width: (RAX - R10) + (R9 - R8)
        # twice the distance between the midpoints: (RAX + R10) - (R8 + R9)
        asm.mov(Reg.RCX, Reg.RAX)
        asm.alu(AluOp.SUB, Reg.RCX, Reg.R10)
        asm.alu(AluOp.ADD, Reg.RCX, Reg.R9)
        asm.alu(AluOp.SUB, Reg.RCX, Reg.R8)
        asm.alu(AluOp.ADD, Reg.RAX, Reg.R10)
        asm.alu(AluOp.SUB, Reg.RAX, Reg.R8)
        asm.alu(AluOp.SUB, Reg.RAX, Reg.R9)
        asm.alu(AluOp.CMP, Reg.RCX, Reg.R11)
        asm.jcc(Cond.ABOVE_OR_EQUAL, not_better)
        asm.mov(Reg.R11, Reg.RCX)
        asm.mov(Reg.R12, Reg.RAX)
        asm.bind(not_better)
        asm.dec(Reg.RBX)
        asm.jcc(Cond.NOT_EQUAL, attempt)
        asm.mov(Reg.RAX, Reg.R12)
        asm.imul(Reg.RAX, Reg.RAX, _PIT_HZ)
        asm.mov_imm(Reg.RCX, 2 * _CALIBRATION_COUNT * 1000)
        asm.mov_imm(Reg.RDX, 0)
        asm.div(Reg.RCX)

    def _main_loop(self) -> None:
        """Tick when a millisecond has passed, otherwise write the next page if allowed."""
        asm = self.asm
        status = self.status
        asm.bind(self.main)
        self._read_tsc()
        asm.mov(Reg.RCX, Reg.RAX)
        asm.alu(AluOp.SUB, Reg.RCX, Reg.R13)
        asm.alu(AluOp.CMP, Reg.RCX, Reg.R14)
        asm.jcc(Cond.ABOVE_OR_EQUAL, self.tick)
        if status.working_set_pages == 0:
            asm.jmp(self.main)
            return
        if status.dirty_bytes_per_ms:
            asm.alu(AluOp.CMP, Reg.R12, PAGE_SIZE)
            asm.jcc(Cond.BELOW, self.main)
            asm.alu(AluOp.SUB, Reg.R12, PAGE_SIZE)
        self._page_address(Reg.RBX)
        asm.imul(Reg.RAX, Reg.RBX, PATTERN_PAGE_MULTIPLIER)
        asm.alu(AluOp.XOR, Reg.RAX, Reg.R11)
        asm.mov_imm(Reg.RCX, _QWORDS_PER_PAGE)
        asm.rep_stosq()
        asm.inc(_status(StatusField.PAGES_WRITTEN))
        asm.inc(Reg.RBX)
        asm.alu(AluOp.CMP, Reg.RBX, status.working_set_pages)
        asm.jcc(Cond.BELOW, self.main)
        # A pass is complete: it becomes the previous pass.
        asm.mov_imm(Reg.RBX, 0)
        asm.mov(Reg.R10, Reg.R11)
        asm.mov_imm(Reg.R9, PATTERN_PAGE_MULTIPLIER)
        asm.alu(AluOp.ADD, Reg.R11, PATTERN_PASS_STEP)
        asm.jmp(self.main)

    def _tick(self) -> None:
        """Credit, heartbeat, self-check; RAX holds the TSC and RCX the time since the last tick."""
        asm = self.asm
        status = self.status
        asm.bind(self.tick)
        asm.mov(Reg.R13, Reg.RAX)
        if status.working_set_pages and status.dirty_bytes_per_ms:
            self._top_up_credit()
        # count before writing, so the record never lags behind what the host has seen
        asm.load(Reg.RAX, _status(StatusField.HEARTBEATS))
        asm.inc(_status(StatusField.HEARTBEATS))
        self._call_emit_line(LineKind.HEARTBEAT)
        if status.verify_pages_per_ms:
            self._verify()
        asm.jmp(self.main)

    def _top_up_credit(self) -> None:
        """r12 += min(elapsed, catch-up) * bytes per ms / TSC per ms, capped."""
        asm = self.asm
        rate = self.status.dirty_bytes_per_ms
        asm.mov(Reg.RAX, Reg.R14)
        asm.imul(Reg.RAX, Reg.RAX, _TICK_CATCH_UP_MS)
        asm.alu(AluOp.CMP, Reg.RCX, Reg.RAX)
        within = Label("elapsed_within_catch_up")
        asm.jcc(Cond.BELOW_OR_EQUAL, within)
        asm.mov(Reg.RCX, Reg.RAX)
        asm.bind(within)
        asm.imul(Reg.RAX, Reg.RCX, rate)
        asm.mov_imm(Reg.RDX, 0)
        asm.div(Reg.R14)
        asm.alu(AluOp.ADD, Reg.R12, Reg.RAX)
        asm.mov_imm(Reg.RAX, _TICK_CATCH_UP_MS * rate + PAGE_SIZE)
        asm.alu(AluOp.CMP, Reg.R12, Reg.RAX)
        capped = Label("credit_capped")
        asm.jcc(Cond.BELOW_OR_EQUAL, capped)
        asm.mov(Reg.R12, Reg.RAX)
        asm.bind(capped)

    def _verify(self) -> None:
        """Re-read pages from RBP on against what the guest wrote there; falls through."""
        asm = self.asm
        status = self.status
        next_page, previous_pass, scan, bad, advance, more, sweep_failed = (
            Label(name)
            for name in ("next", "previous_pass", "scan", "bad", "advance", "more", "failed")
        )
        asm.mov_imm(Reg.R8, status.verify_pages_per_ms)
        asm.jmp(next_page)
        asm.bind(bad)
        asm.inc(_status(StatusField.BAD_PAGES))
        asm.mov_imm(Reg.RAX, 1)
        asm.store(_status(StatusField.SWEEP_FAILED), Reg.RAX)
        asm.mov(Reg.RAX, Reg.RBP)
        self._call_emit_line(LineKind.BAD_PAGE)
        asm.jmp(advance)
        asm.bind(next_page)
        asm.alu(AluOp.CMP, Reg.RBP, Reg.RBX)
        asm.jcc(Cond.ABOVE_OR_EQUAL, previous_pass)
        asm.imul(Reg.RAX, Reg.RBP, PATTERN_PAGE_MULTIPLIER)
        asm.alu(AluOp.XOR, Reg.RAX, Reg.R11)
        asm.jmp(scan)
        asm.bind(previous_pass)
        asm.mov(Reg.RAX, Reg.RBP)
        asm.imul(Reg.RAX, Reg.R9)
        asm.alu(AluOp.XOR, Reg.RAX, Reg.R10)
        asm.bind(scan)
        self._page_address(Reg.RBP)
        asm.mov_imm(Reg.RCX, _QWORDS_PER_PAGE)
        asm.repe_scasq()
        asm.jcc(Cond.NOT_EQUAL, bad)
        asm.inc(_status(StatusField.PAGES_VERIFIED))
        asm.bind(advance)
        asm.inc(Reg.RBP)
        asm.alu(AluOp.CMP, Reg.RBP, status.working_set_pages)
        asm.jcc(Cond.BELOW, more)
        # A sweep is complete: report it unless it found damage.
        asm.mov_imm(Reg.RBP, 0)
        asm.inc(_status(StatusField.VERIFY_SWEEPS))
        asm.load(Reg.RAX, _status(StatusField.SWEEP_FAILED))
        asm.test(Reg.RAX, Reg.RAX)
        asm.jcc(Cond.NOT_EQUAL, sweep_failed)
        asm.load(Reg.RAX, _status(StatusField.VERIFY_SWEEPS))
        self._call_emit_line(LineKind.VERIFIED)
        asm.jmp(more)
        asm.bind(sweep_failed)
        asm.mov_imm(Reg.RAX, 0)
        asm.store(_status(StatusField.SWEEP_FAILED), Reg.RAX)
        asm.bind(more)
        asm.dec(Reg.R8)
        asm.jcc(Cond.NOT_EQUAL, next_page)

    def _emit_line(self) -> None:
        """Subroutine: RCX prefix bytes at RSI, then RAX in hex and a newline.

        When the UART has not finished sending (QEMU could not write to the socket and keeps
        the bytes for a retry), the line is dropped whole: more bytes would overrun the FIFO
        and garble lines. Clobbers RAX, RCX, RDX, RSI and RDI.
        """
        asm = self.asm
        digit, decimal, busy = Label("digit"), Label("decimal"), Label("busy")
        asm.bind(self.emit_line)
        asm.mov(Reg.RDI, Reg.RAX)
        asm.mov_imm(Reg.RDX, _COM1 + _SERIAL_LINE_STATUS)
        asm.in_al_dx()
        asm.test(Reg.RAX, _LINE_STATUS_TRANSMITTER_EMPTY)
        asm.jcc(Cond.EQUAL, busy)
        asm.mov(Reg.RAX, Reg.RDI)
        asm.mov_imm(Reg.RDX, _COM1)
        asm.rep_outsb()
        asm.mov_imm(Reg.RDI, _LINE_BUFFER_END)
        asm.mov_imm(Reg.RCX, ord("\n"))
        asm.store_byte(Mem(Reg.RDI), Reg.RCX)
        asm.bind(digit)
        asm.dec(Reg.RDI)
        asm.mov(Reg.RCX, Reg.RAX)
        asm.alu(AluOp.AND, Reg.RCX, 0xF)
        asm.alu(AluOp.CMP, Reg.RCX, 10)
        asm.jcc(Cond.BELOW, decimal)
        asm.alu(AluOp.ADD, Reg.RCX, ord("a") - ord("0") - 10)
        asm.bind(decimal)
        asm.alu(AluOp.ADD, Reg.RCX, ord("0"))
        asm.store_byte(Mem(Reg.RDI), Reg.RCX)
        asm.shr(Reg.RAX, 4)
        asm.jcc(Cond.NOT_EQUAL, digit)
        asm.mov(Reg.RSI, Reg.RDI)
        asm.mov_imm(Reg.RCX, _LINE_BUFFER_END + 1)
        asm.alu(AluOp.SUB, Reg.RCX, Reg.RDI)
        asm.rep_outsb()
        asm.bind(busy)
        asm.ret()

    def _data(self) -> None:
        asm = self.asm
        for kind, label in self.prefixes.items():
            asm.bind(label)
            asm.data(kind.value)
        asm.bind(self.gdtr)
        gdt = b"".join(struct.pack("<Q", descriptor) for descriptor in _GDT)
        asm.data(struct.pack("<HI", len(gdt) - 1, asm.address + 6))
        asm.data(gdt)

    def _call_emit_line(self, kind: LineKind) -> None:
        self.asm.mov_imm(Reg.RSI, self.prefixes[kind])
        self.asm.mov_imm(Reg.RCX, len(kind.value))
        self.asm.call(self.emit_line)

    def _read_tsc(self) -> None:
        """RAX = the full 64-bit TSC; clobbers RDX."""
        self.asm.rdtsc()
        self.asm.shl(Reg.RDX, 32)
        self.asm.alu(AluOp.OR, Reg.RAX, Reg.RDX)

    def _page_address(self, page: Reg) -> None:
        """RDI = address of working-set page ``page``."""
        self.asm.mov(Reg.RDI, page)
        self.asm.shl(Reg.RDI, 12)
        self.asm.alu(AluOp.ADD, Reg.RDI, WORKING_SET_ADDR)
