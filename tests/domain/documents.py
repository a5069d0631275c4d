"""Domain documents shared by the tests: fixtures on disk and a minimal template."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def minimal(*, top: str = "", devices: str = "", os: str = "", root: str = "") -> str:
    """A small valid document, with ``top`` after ``<vcpu>``, ``os`` inside ``<os>`` and
    ``devices`` inside ``<devices>``; ``root`` adds attributes to ``<domain>``."""
    return f"""<domain type='kvm'{root}>
  <name>vm1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  {top}
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    {os}
  </os>
  <devices>
    {devices}
  </devices>
</domain>"""
