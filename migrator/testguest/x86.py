"""A small x86-64 machine-code assembler: the instructions the test guest kernel needs, no more.

Register operations are 64-bit (REX.W) unless a method says otherwise. Jumps and calls always
take a 32-bit displacement. Labels are bound to addresses as code is emitted; references to a
label (jump targets, absolute addresses in immediates) are patched by :meth:`Assembler.assemble`.

A few instructions have the same encoding in 32-bit protected mode and are meant for the boot
code that runs there: :meth:`~Assembler.mov_imm` (on RAX..RDI), :meth:`~Assembler.mov_to_cr`,
:meth:`~Assembler.wrmsr`, :meth:`~Assembler.lgdt` and :meth:`~Assembler.jmp_far`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from migrator.testguest.errors import AssemblerError

_INT8 = range(-(1 << 7), 1 << 7)
_INT32 = range(-(1 << 31), 1 << 31)
_UINT32 = range(1 << 32)


class Reg(enum.IntEnum):
    """General-purpose registers by encoding number."""

    RAX = 0
    RCX = 1
    RDX = 2
    RBX = 3
    RSP = 4
    RBP = 5
    RSI = 6
    RDI = 7
    R8 = 8
    R9 = 9
    R10 = 10
    R11 = 11
    R12 = 12
    R13 = 13
    R14 = 14
    R15 = 15


class ControlReg(enum.IntEnum):
    """Control registers by encoding number."""

    CR0 = 0
    CR3 = 3
    CR4 = 4


class Cond(enum.IntEnum):
    """Conditions of conditional jumps (the low nibble of ``0F 8x``)."""

    BELOW = 0x2
    ABOVE_OR_EQUAL = 0x3
    EQUAL = 0x4
    NOT_EQUAL = 0x5
    BELOW_OR_EQUAL = 0x6


class AluOp(enum.IntEnum):
    """Two-operand arithmetic and logic operations by their ``/digit``."""

    ADD = 0
    OR = 1
    AND = 4
    SUB = 5
    XOR = 6
    CMP = 7


@dataclass(frozen=True)
class Mem:
    """A memory operand: ``[base + disp]``."""

    base: Reg
    disp: int = 0


class Label:
    """A position in the code, bound once with :meth:`Assembler.bind`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<Label {self.name}>"


class _Fixup(enum.Enum):
    RELATIVE32 = enum.auto()  # signed distance from the end of the 4-byte field
    ABSOLUTE32 = enum.auto()  # the label's address, unsigned
    ABSOLUTE32_SIGNED = enum.auto()  # the label's address, sign-extended by the CPU


@dataclass(frozen=True)
class _Reference:
    offset: int
    label: Label
    kind: _Fixup


class Assembler:
    """Emits machine code for a fixed load address (``origin``)."""

    def __init__(self, origin: int) -> None:
        self.origin = origin
        self._code = bytearray()
        self._bound: dict[Label, int] = {}
        self._references: list[_Reference] = []

    # --- positions and data ---------------------------------------------------------------

    @property
    def address(self) -> int:
        """The address of the next byte emitted."""
        return self.origin + len(self._code)

    def bind(self, label: Label) -> None:
        """Bind ``label`` to the current address.

        Raises:
            AssemblerError: the label is already bound.
        """
        if label in self._bound:
            raise AssemblerError(f"label {label.name!r} is bound twice")
        self._bound[label] = self.address

    def address_of(self, label: Label) -> int:
        """The address ``label`` is bound to.

        Raises:
            AssemblerError: the label is not bound yet.
        """
        if label not in self._bound:
            raise AssemblerError(f"label {label.name!r} is not bound")
        return self._bound[label]

    def data(self, payload: bytes) -> None:
        """Emit raw bytes."""
        self._code += payload

    def pad_to(self, address: int) -> None:
        """Pad with zero bytes up to ``address``.

        Raises:
            AssemblerError: the code already extends past ``address``.
        """
        if address < self.address:
            raise AssemblerError(
                f"code reaches {self.address:#x}, past the fixed address {address:#x}"
            )
        self._code += bytes(address - self.address)

    def assemble(self) -> bytes:
        """The code with every label reference patched.

        Raises:
            AssemblerError: a referenced label is unbound, or its address or distance does not
                fit its field.
        """
        code = bytearray(self._code)
        for ref in self._references:
            target = self.address_of(ref.label)
            if ref.kind is _Fixup.RELATIVE32:
                value = target - (self.origin + ref.offset + 4)
                allowed = _INT32
            else:
                value = target
                allowed = _INT32 if ref.kind is _Fixup.ABSOLUTE32_SIGNED else _UINT32
            if value not in allowed:
                raise AssemblerError(f"label {ref.label.name!r} is out of reach ({value:#x})")
            struct.pack_into("<I", code, ref.offset, value & 0xFFFFFFFF)
        return bytes(code)

    # --- moves ------------------------------------------------------------------------------

    def mov_imm(self, dst: Reg, value: int | Label) -> None:
        """``mov r32, imm32``: loads an unsigned 32-bit value (zero-extended in 64-bit mode)."""
        self._rex(b=dst)
        self._code.append(0xB8 + (dst & 7))
        self._imm32(value, kind=_Fixup.ABSOLUTE32, allowed=_UINT32)

    def mov(self, dst: Reg, src: Reg) -> None:
        """``mov r64, r64``."""
        self._op_reg(0x89, reg=src, rm=dst)

    def load(self, dst: Reg, src: Mem) -> None:
        """``mov r64, [mem]``."""
        self._op_mem(0x8B, reg=dst, mem=src)

    def store(self, dst: Mem, src: Reg) -> None:
        """``mov [mem], r64``."""
        self._op_mem(0x89, reg=src, mem=dst)

    def store_byte(self, dst: Mem, src: Reg) -> None:
        """``mov [mem], r8``: stores the low byte of RAX, RCX, RDX or RBX."""
        if src > Reg.RBX:
            raise AssemblerError(f"store_byte takes AL, CL, DL or BL, not a byte of {src.name}")
        self._op_mem(0x88, reg=src, mem=dst, wide=False)

    # --- arithmetic -------------------------------------------------------------------------

    def alu(self, op: AluOp, dst: Reg, src: Reg | int) -> None:
        """``op r64, r64`` or ``op r64, imm`` (a signed 8- or 32-bit immediate)."""
        if isinstance(src, Reg):
            self._op_reg(op * 8 + 1, reg=src, rm=dst)
        elif src in _INT8:
            self._op_reg(0x83, reg=op, rm=dst)
            self._code += struct.pack("<b", src)
        else:
            self._op_reg(0x81, reg=op, rm=dst)
            self._imm32(src, kind=_Fixup.ABSOLUTE32_SIGNED, allowed=_INT32)

    def test(self, a: Reg, b: Reg | int) -> None:
        """``test r64, r64`` or ``test r64, imm32`` (sign-extended)."""
        if isinstance(b, Reg):
            self._op_reg(0x85, reg=b, rm=a)
        else:
            self._op_reg(0xF7, reg=0, rm=a)
            self._imm32(b, kind=_Fixup.ABSOLUTE32_SIGNED, allowed=_INT32)

    def inc(self, target: Reg | Mem) -> None:
        """``inc r64`` or ``inc qword [mem]``."""
        if isinstance(target, Reg):
            self._op_reg(0xFF, reg=0, rm=target)
        else:
            self._op_mem(0xFF, reg=0, mem=target)

    def dec(self, target: Reg) -> None:
        """``dec r64``."""
        self._op_reg(0xFF, reg=1, rm=target)

    def shl(self, target: Reg, count: int) -> None:
        """``shl r64, imm8``."""
        self._shift(4, target, count)

    def shr(self, target: Reg, count: int) -> None:
        """``shr r64, imm8``."""
        self._shift(5, target, count)

    def imul(self, dst: Reg, src: Reg, factor: int | None = None) -> None:
        """``imul r64, r64`` (dst *= src) or ``imul r64, r64, imm`` (dst = src * imm)."""
        if factor is None:
            self._op_reg(0xAF, reg=dst, rm=src, escape=True)
        elif factor in _INT8:
            self._op_reg(0x6B, reg=dst, rm=src)
            self._code += struct.pack("<b", factor)
        else:
            self._op_reg(0x69, reg=dst, rm=src)
            self._imm32(factor, kind=_Fixup.ABSOLUTE32_SIGNED, allowed=_INT32)

    def div(self, divisor: Reg) -> None:
        """``div r64``: unsigned RDX:RAX / divisor, quotient in RAX, remainder in RDX."""
        self._op_reg(0xF7, reg=6, rm=divisor)

    # --- control flow -----------------------------------------------------------------------

    def jmp(self, target: Label) -> None:
        """``jmp rel32``."""
        self._code.append(0xE9)
        self._reference(target, _Fixup.RELATIVE32)

    def jcc(self, cond: Cond, target: Label) -> None:
        """``jcc rel32``."""
        self._code += bytes((0x0F, 0x80 + cond))
        self._reference(target, _Fixup.RELATIVE32)

    def call(self, target: Label) -> None:
        """``call rel32``."""
        self._code.append(0xE8)
        self._reference(target, _Fixup.RELATIVE32)

    def ret(self) -> None:
        """``ret``."""
        self._code.append(0xC3)

    def jmp_far(self, selector: int, target: Label) -> None:
        """``jmp ptr16:32`` (32-bit protected mode only): loads CS with ``selector``."""
        self._code.append(0xEA)
        self._reference(target, _Fixup.ABSOLUTE32)
        self._code += struct.pack("<H", selector)

    def push_imm(self, value: int | Label) -> None:
        """``push imm32``: pushes the value sign-extended to 64 bits."""
        self._code.append(0x68)
        self._imm32(value, kind=_Fixup.ABSOLUTE32_SIGNED, allowed=_INT32)

    def iretq(self) -> None:
        """``iretq``."""
        self._code += b"\x48\xcf"

    # --- system -----------------------------------------------------------------------------

    def mov_to_cr(self, cr: ControlReg, src: Reg) -> None:
        """``mov crN, r``."""
        self._op_reg(0x22, reg=cr, rm=src, escape=True, wide=False)

    def lgdt(self, descriptor: Label) -> None:
        """``lgdt [abs32]``: loads the GDT register from the pseudo-descriptor at ``descriptor``."""
        self._code += b"\x0f\x01"
        self._code += bytes((0x14, 0x25))  # ModRM /2 with a SIB byte: absolute disp32
        self._reference(descriptor, _Fixup.ABSOLUTE32_SIGNED)

    def wrmsr(self) -> None:
        """``wrmsr``: MSR[ECX] = EDX:EAX."""
        self._code += b"\x0f\x30"

    def rdtsc(self) -> None:
        """``rdtsc``: EDX:EAX = time-stamp counter (upper halves of RDX and RAX cleared)."""
        self._code += b"\x0f\x31"

    # --- port I/O and strings ---------------------------------------------------------------

    def in_al(self, port: int) -> None:
        """``in al, imm8``."""
        self._code += bytes((0xE4, self._port(port)))

    def in_al_dx(self) -> None:
        """``in al, dx``."""
        self._code.append(0xEC)

    def out_al(self, port: int) -> None:
        """``out imm8, al``."""
        self._code += bytes((0xE6, self._port(port)))

    def out_al_dx(self) -> None:
        """``out dx, al``."""
        self._code.append(0xEE)

    def rep_outsb(self) -> None:
        """``rep outsb``: writes RCX bytes from [RSI] to port DX."""
        self._code += b"\xf3\x6e"

    def rep_stosq(self) -> None:
        """``rep stosq``: stores RAX into RCX qwords from [RDI] upwards."""
        self._code += b"\xf3\x48\xab"

    def repe_scasq(self) -> None:
        """``repe scasq``: compares RAX with qwords from [RDI] while equal, RCX at most.

        ZF is clear afterwards exactly when a qword differed.
        """
        self._code += b"\xf3\x48\xaf"

    # --- encoding helpers -------------------------------------------------------------------

    def _rex(self, *, w: bool = False, r: int = 0, b: int = 0) -> None:
        value = (w << 3) | ((r >> 3) << 2) | (b >> 3)
        if value:
            self._code.append(0x40 | value)

    def _op_reg(
        self, opcode: int, *, reg: int, rm: Reg, escape: bool = False, wide: bool = True
    ) -> None:
        self._rex(w=wide, r=reg, b=rm)
        if escape:
            self._code.append(0x0F)
        self._code += bytes((opcode, 0xC0 | ((reg & 7) << 3) | (rm & 7)))

    def _op_mem(self, opcode: int, *, reg: int, mem: Mem, wide: bool = True) -> None:
        self._rex(w=wide, r=reg, b=mem.base)
        self._code.append(opcode)
        field = (reg & 7) << 3
        low = mem.base & 7
        sib = b"\x24" if low == Reg.RSP else b""
        if mem.disp == 0 and low != Reg.RBP:
            self._code += bytes((field | low,)) + sib
        elif mem.disp in _INT8:
            self._code += bytes((0x40 | field | low,)) + sib + struct.pack("<b", mem.disp)
        elif mem.disp in _INT32:
            self._code += bytes((0x80 | field | low,)) + sib + struct.pack("<i", mem.disp)
        else:
            raise AssemblerError(f"displacement {mem.disp:#x} does not fit 32 bits")

    def _shift(self, digit: int, target: Reg, count: int) -> None:
        if count not in range(64):
            raise AssemblerError(f"shift count {count} is not in 0..63")
        self._op_reg(0xC1, reg=digit, rm=target)
        self._code.append(count)

    def _imm32(self, value: int | Label, *, kind: _Fixup, allowed: range) -> None:
        if isinstance(value, Label):
            self._reference(value, kind)
            return
        if value not in allowed:
            raise AssemblerError(f"immediate {value:#x} does not fit this instruction")
        self._code += struct.pack("<I", value & 0xFFFFFFFF)

    def _reference(self, label: Label, kind: _Fixup) -> None:
        self._references.append(_Reference(len(self._code), label, kind))
        self._code += bytes(4)

    @staticmethod
    def _port(port: int) -> int:
        if port not in range(256):
            raise AssemblerError(f"port {port:#x} needs DX, not an 8-bit immediate")
        return port
