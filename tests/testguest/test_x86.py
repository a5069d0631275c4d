"""Every instruction form the assembler emits, against bytes that GNU objdump decodes as meant."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from migrator.testguest.errors import AssemblerError
from migrator.testguest.x86 import AluOp, Assembler, Cond, ControlReg, Label, Mem, Reg

ORIGIN = 0x100000

ENCODINGS: list[tuple[str, Callable[[Assembler], None], str]] = [
    ("mov eax, 0x3f8", lambda a: a.mov_imm(Reg.RAX, 0x3F8), "b8 f8 03 00 00"),
    ("mov r15d, 0x101000", lambda a: a.mov_imm(Reg.R15, 0x101000), "41 bf 00 10 10 00"),
    ("mov ecx, 0xc0000080", lambda a: a.mov_imm(Reg.RCX, 0xC0000080), "b9 80 00 00 c0"),
    ("mov rbx, r11", lambda a: a.mov(Reg.RBX, Reg.R11), "4c 89 db"),
    ("mov r13, rax", lambda a: a.mov(Reg.R13, Reg.RAX), "49 89 c5"),
    ("mov rax, [r15+0x28]", lambda a: a.load(Reg.RAX, Mem(Reg.R15, 0x28)), "49 8b 47 28"),
    ("mov rax, [r12]", lambda a: a.load(Reg.RAX, Mem(Reg.R12)), "49 8b 04 24"),
    ("mov rax, [r13+0]", lambda a: a.load(Reg.RAX, Mem(Reg.R13)), "49 8b 45 00"),
    (
        "mov rax, [rbp+0x200]",
        lambda a: a.load(Reg.RAX, Mem(Reg.RBP, 0x200)),
        "48 8b 85 00 02 00 00",
    ),
    ("mov [r15+0x30], rax", lambda a: a.store(Mem(Reg.R15, 0x30), Reg.RAX), "49 89 47 30"),
    ("mov [rsp+8], r9", lambda a: a.store(Mem(Reg.RSP, 8), Reg.R9), "4c 89 4c 24 08"),
    ("mov [rdi], cl", lambda a: a.store_byte(Mem(Reg.RDI), Reg.RCX), "88 0f"),
    ("mov [r15+1], al", lambda a: a.store_byte(Mem(Reg.R15, 1), Reg.RAX), "41 88 47 01"),
    ("add rcx, r13", lambda a: a.alu(AluOp.ADD, Reg.RCX, Reg.R13), "4c 01 e9"),
    ("or rcx, r13", lambda a: a.alu(AluOp.OR, Reg.RCX, Reg.R13), "4c 09 e9"),
    ("and rcx, r13", lambda a: a.alu(AluOp.AND, Reg.RCX, Reg.R13), "4c 21 e9"),
    ("sub rcx, r13", lambda a: a.alu(AluOp.SUB, Reg.RCX, Reg.R13), "4c 29 e9"),
    ("xor rcx, r13", lambda a: a.alu(AluOp.XOR, Reg.RCX, Reg.R13), "4c 31 e9"),
    ("cmp rcx, r13", lambda a: a.alu(AluOp.CMP, Reg.RCX, Reg.R13), "4c 39 e9"),
    ("add r12, 0x1000", lambda a: a.alu(AluOp.ADD, Reg.R12, 0x1000), "49 81 c4 00 10 00 00"),
    ("sub r12, 0x1000", lambda a: a.alu(AluOp.SUB, Reg.R12, 0x1000), "49 81 ec 00 10 00 00"),
    ("cmp r12, 0x1000", lambda a: a.alu(AluOp.CMP, Reg.R12, 0x1000), "49 81 fc 00 10 00 00"),
    ("and rax, -4", lambda a: a.alu(AluOp.AND, Reg.RAX, -4), "48 83 e0 fc"),
    ("or rax, 1", lambda a: a.alu(AluOp.OR, Reg.RAX, 1), "48 83 c8 01"),
    ("xor rax, -4", lambda a: a.alu(AluOp.XOR, Reg.RAX, -4), "48 83 f0 fc"),
    ("test rax, rax", lambda a: a.test(Reg.RAX, Reg.RAX), "48 85 c0"),
    ("test rax, 0x20", lambda a: a.test(Reg.RAX, 0x20), "48 f7 c0 20 00 00 00"),
    ("inc rbx", lambda a: a.inc(Reg.RBX), "48 ff c3"),
    ("inc r8", lambda a: a.inc(Reg.R8), "49 ff c0"),
    ("inc qword [r15+0x30]", lambda a: a.inc(Mem(Reg.R15, 0x30)), "49 ff 47 30"),
    ("dec r8", lambda a: a.dec(Reg.R8), "49 ff c8"),
    ("dec rdi", lambda a: a.dec(Reg.RDI), "48 ff cf"),
    ("shl rdx, 32", lambda a: a.shl(Reg.RDX, 32), "48 c1 e2 20"),
    ("shr rax, 4", lambda a: a.shr(Reg.RAX, 4), "48 c1 e8 04"),
    ("imul rax, r9", lambda a: a.imul(Reg.RAX, Reg.R9), "49 0f af c1"),
    (
        "imul rax, rbx, 0x5bd1e995",
        lambda a: a.imul(Reg.RAX, Reg.RBX, 0x5BD1E995),
        "48 69 c3 95 e9 d1 5b",
    ),
    ("imul rax, rbp, 10", lambda a: a.imul(Reg.RAX, Reg.RBP, 10), "48 6b c5 0a"),
    ("imul r10, r11, -2", lambda a: a.imul(Reg.R10, Reg.R11, -2), "4d 6b d3 fe"),
    ("div r14", lambda a: a.div(Reg.R14), "49 f7 f6"),
    ("div rcx", lambda a: a.div(Reg.RCX), "48 f7 f1"),
    ("push 0x3002", lambda a: a.push_imm(0x3002), "68 02 30 00 00"),
    ("iretq", lambda a: a.iretq(), "48 cf"),
    ("mov cr4, eax", lambda a: a.mov_to_cr(ControlReg.CR4, Reg.RAX), "0f 22 e0"),
    ("mov cr3, eax", lambda a: a.mov_to_cr(ControlReg.CR3, Reg.RAX), "0f 22 d8"),
    ("mov cr0, eax", lambda a: a.mov_to_cr(ControlReg.CR0, Reg.RAX), "0f 22 c0"),
    ("wrmsr", lambda a: a.wrmsr(), "0f 30"),
    ("rdtsc", lambda a: a.rdtsc(), "0f 31"),
    ("in al, 0x61", lambda a: a.in_al(0x61), "e4 61"),
    ("in al, dx", lambda a: a.in_al_dx(), "ec"),
    ("out 0x43, al", lambda a: a.out_al(0x43), "e6 43"),
    ("out dx, al", lambda a: a.out_al_dx(), "ee"),
    ("rep outsb", lambda a: a.rep_outsb(), "f3 6e"),
    ("rep stosq", lambda a: a.rep_stosq(), "f3 48 ab"),
    ("repe scasq", lambda a: a.repe_scasq(), "f3 48 af"),
    ("ret", lambda a: a.ret(), "c3"),
]


@pytest.mark.parametrize(
    ("instruction", "emit", "expected"), ENCODINGS, ids=[e[0] for e in ENCODINGS]
)
def test_encoding(instruction: str, emit: Callable[[Assembler], None], expected: str) -> None:
    asm = Assembler(ORIGIN)
    emit(asm)
    assert asm.assemble() == bytes.fromhex(expected)


def _to_self(emit: Callable[[Assembler, Label], None]) -> bytes:
    asm = Assembler(ORIGIN)
    here = Label("here")
    asm.bind(here)
    emit(asm, here)
    return asm.assemble()


def _forward(emit: Callable[[Assembler, Label], None], gap: int = 0) -> bytes:
    asm = Assembler(ORIGIN)
    there = Label("there")
    emit(asm, there)
    asm.data(bytes(gap))
    asm.bind(there)
    return asm.assemble()


def test_backward_jumps_and_calls() -> None:
    assert _to_self(lambda a, t: a.jmp(t)) == bytes.fromhex("e9 fb ff ff ff")
    assert _to_self(lambda a, t: a.call(t)) == bytes.fromhex("e8 fb ff ff ff")
    assert _to_self(lambda a, t: a.jcc(Cond.NOT_EQUAL, t)) == bytes.fromhex("0f 85 fa ff ff ff")


@pytest.mark.parametrize(
    ("cond", "opcode"),
    [
        (Cond.BELOW, 0x82),
        (Cond.ABOVE_OR_EQUAL, 0x83),
        (Cond.EQUAL, 0x84),
        (Cond.NOT_EQUAL, 0x85),
        (Cond.BELOW_OR_EQUAL, 0x86),
    ],
)
def test_forward_conditional_jumps(cond: Cond, opcode: int) -> None:
    code = _forward(lambda a, t: a.jcc(cond, t), gap=0x10)
    assert code[:6] == bytes((0x0F, opcode)) + (0x10).to_bytes(4, "little")


def test_absolute_label_references() -> None:
    # the label sits right after the instruction, at ORIGIN + its length
    assert _forward(lambda a, t: a.mov_imm(Reg.RSI, t)) == bytes.fromhex("be 05 00 10 00")
    assert _forward(lambda a, t: a.push_imm(t)) == bytes.fromhex("68 05 00 10 00")
    assert _forward(lambda a, t: a.lgdt(t)) == bytes.fromhex("0f 01 14 25 08 00 10 00")
    assert _forward(lambda a, t: a.jmp_far(0x08, t)) == bytes.fromhex("ea 07 00 10 00 08 00")


def test_pad_to_and_address() -> None:
    asm = Assembler(ORIGIN)
    asm.data(b"\x90")
    asm.pad_to(ORIGIN + 4)
    assert asm.address == ORIGIN + 4
    label = Label("end")
    asm.bind(label)
    assert asm.address_of(label) == ORIGIN + 4
    assert asm.assemble() == b"\x90\0\0\0"


@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        (lambda a: a.mov_imm(Reg.RAX, 1 << 32), "immediate"),
        (lambda a: a.mov_imm(Reg.RAX, -1), "immediate"),
        (lambda a: a.alu(AluOp.ADD, Reg.RAX, 1 << 31), "immediate"),
        (lambda a: a.imul(Reg.RAX, Reg.RAX, -(1 << 31) - 1), "immediate"),
        (lambda a: a.load(Reg.RAX, Mem(Reg.RBX, 1 << 31)), "displacement"),
        (lambda a: a.store_byte(Mem(Reg.RDI), Reg.RSI), "store_byte"),
        (lambda a: a.in_al(0x3F8), "port"),
        (lambda a: a.shl(Reg.RAX, 64), "shift count"),
        (lambda a: a.pad_to(ORIGIN - 1), "past the fixed address"),
    ],
)
def test_unencodable_operands_are_refused(
    misuse: Callable[[Assembler], None], message: str
) -> None:
    with pytest.raises(AssemblerError, match=message):
        misuse(Assembler(ORIGIN))


def test_label_misuse_is_refused() -> None:
    asm = Assembler(ORIGIN)
    label = Label("twice")
    asm.bind(label)
    with pytest.raises(AssemblerError, match="bound twice"):
        asm.bind(label)
    asm.jmp(Label("nowhere"))
    with pytest.raises(AssemblerError, match="'nowhere' is not bound"):
        asm.assemble()


def test_label_out_of_reach_is_refused() -> None:
    asm = Assembler(0xFFFFFFF0)
    label = Label("high")
    asm.mov_imm(Reg.RAX, label)
    asm.data(bytes(0x20))
    asm.bind(label)  # above 4 GiB: no 32-bit immediate can hold it
    with pytest.raises(AssemblerError, match="out of reach"):
        asm.assemble()
