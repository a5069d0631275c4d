"""`migrator cookie ...`: Decode and inspect migration cookies."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cookies import (
    DEFAULT_MAX_SIZE,
    Cookie,
    Feature,
    JobStatistics,
    cookie_to_plain,
    decode,
    decode_unverified,
    from_xml,
    load_public_key,
)


class CookieForm(enum.Enum):
    """Which form a cookie file holds."""

    XML = "xml"
    MSGPACK = "msgpack"


class SignatureStatus(enum.Enum):
    """What is known about a cookie's signature."""

    UNSIGNED = "unsigned"
    VERIFIED = "verified"
    NOT_VERIFIED = "not verified"


@dataclasses.dataclass(frozen=True)
class ShownCookie:
    """A decoded cookie file, with where it came from and how far it can be trusted."""

    form: CookieForm
    signature: SignatureStatus
    signer_host_uuid: str | None
    cookie: Cookie


@click.group("cookie")
def cookie_group() -> None:
    """Decode and inspect migration cookies."""


@cookie_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Public key (raw or PEM) to verify a signed msgpack cookie with.",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SIZE,
    show_default=True,
    help="Largest cookie accepted, in bytes.",
)
def show_command(file: Path, as_json: bool, key_file: Path | None, max_size: int) -> None:
    """Decode the XML or msgpack cookie in FILE and print it.

    A signed msgpack cookie is shown as "signature not verified" unless --key is given.
    """
    shown = read_cookie_file(file, key_file=key_file, max_size=max_size)
    if as_json:
        click.echo(json.dumps(_as_json(shown), indent=2))
    else:
        Console().print(_as_table(shown))


def read_cookie_file(path: Path, *, key_file: Path | None, max_size: int) -> ShownCookie:
    """Read and decode the cookie in ``path``, verifying it with ``key_file`` if given.

    Raises:
        CookieError: the file is not a valid cookie, or the signature does not verify.
        OSError: a file cannot be read.
        click.UsageError: a key was given for an XML cookie, which is not signed.
    """
    data = path.read_bytes()
    if _looks_like_xml(data):
        if key_file is not None:
            raise click.UsageError("--key applies to signed msgpack cookies; this one is XML")
        return ShownCookie(
            CookieForm.XML, SignatureStatus.UNSIGNED, None, from_xml(data, max_size=max_size)
        )
    if key_file is None:
        unverified = decode_unverified(data, max_size=max_size)
        return ShownCookie(
            CookieForm.MSGPACK,
            SignatureStatus.NOT_VERIFIED,
            unverified.signer_host_uuid,
            unverified.cookie,
        )
    key = load_public_key(key_file.read_bytes())
    cookie = decode(data, trusted_keys=lambda _host_uuid: key, max_size=max_size)
    return ShownCookie(CookieForm.MSGPACK, SignatureStatus.VERIFIED, cookie.hostuuid, cookie)


def _looks_like_xml(data: bytes) -> bool:
    # A msgpack envelope starts with an array header, never with '<' or a UTF-8 BOM.
    return data.lstrip(b" \t\r\n").startswith((b"<", b"\xef\xbb\xbf"))


def _as_json(shown: ShownCookie) -> dict[str, Any]:
    return {
        "form": shown.form.value,
        "signature": shown.signature.value,
        "signer": shown.signer_host_uuid,
        "cookie": _jsonable(cookie_to_plain(shown.cookie, keep_defaults=True)),
    }


def _jsonable(value: Any) -> Any:
    # Lease state is the only bytes value, and cookies hold it as UTF-8 text.
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _as_table(shown: ShownCookie) -> Table:
    cookie = shown.cookie
    table = Table(title="Migration cookie", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    source = shown.form.value
    if shown.signature is not SignatureStatus.UNSIGNED:
        source += f", signature {shown.signature.value}, signed by {shown.signer_host_uuid}"
    rows: list[tuple[str, str]] = [
        ("form", source),
        ("name", cookie.name),
        ("uuid", cookie.uuid),
        ("hostname", cookie.hostname),
        ("hostuuid", cookie.hostuuid),
        ("features", _features_line(cookie)),
        *_feature_rows(cookie),
    ]
    for field, value in rows:
        # Text(), not a markup string: cookie contents may contain '[' and must show as is.
        table.add_row(field, Text(value))
    return table


def _features_line(cookie: Cookie) -> str:
    names = [
        f"{feature.wire_name} (mandatory)" if feature.mandatory else feature.wire_name
        for feature in sorted(cookie.features, key=lambda feature: feature.bit)
    ]
    return ", ".join(names) or "none"


def _feature_rows(cookie: Cookie) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if (graphics := cookie.graphics) is not None:
        line = f"{graphics.type.value} on {graphics.listen} port {graphics.port}"
        if graphics.tls_port is not None:
            line += f", TLS port {graphics.tls_port}"
        if graphics.cert_subject is not None:
            line += f", certificate subject {graphics.cert_subject}"
        rows.append(("graphics", line))
    if (lockstate := cookie.lockstate) is not None:
        if lockstate.driver is None:
            rows.append(("lockstate", "announced, no lease state"))
        else:
            leases = lockstate.leases.decode("utf-8")
            rows.append(("lockstate", f"driver {lockstate.driver}, leases {leases}"))
    if cookie.persistent is not None:
        rows.append(("persistent", f"<domain> definition, {len(cookie.persistent)} characters"))
    if (network := cookie.network) is not None:
        lines = [
            f"interface {interface.index}: {interface.vporttype.value}"
            + ("" if interface.portdata is None else f", port data {interface.portdata}")
            for interface in network.interfaces
        ]
        rows.append(("network", "\n".join(lines) or "no interfaces"))
    if (nbd := cookie.nbd) is not None:
        lines = ["no port" if nbd.port is None else f"port {nbd.port}"]
        lines += [f"disk {disk.target}: {disk.capacity} bytes" for disk in nbd.disks]
        rows.append(("nbd", "\n".join(lines)))
    if cookie.statistics is not None:
        rows.append(("statistics", _statistics_lines(cookie.statistics)))
    for feature, flag in (
        (Feature.MEMORY_HOTPLUG, cookie.memory_hotplug),
        (Feature.CPU_HOTPLUG, cookie.cpu_hotplug),
    ):
        if flag:
            rows.append((feature.wire_name, "yes"))
    if cookie.cpu is not None:
        rows.append(("cpu", cookie.cpu))
    if (capabilities := cookie.capabilities) is not None:
        names = [f"{cap.name} (auto)" if cap.auto else cap.name for cap in capabilities]
        rows.append(("capabilities", ", ".join(names) or "none"))
    if (bitmaps := cookie.block_dirty_bitmaps) is not None:
        lines = [
            f"disk {disk.target}: "
            + (", ".join(f"{bitmap.name} as {bitmap.alias}" for bitmap in disk.bitmaps) or "none")
            for disk in bitmaps.disks
        ]
        rows.append((Feature.BLOCK_DIRTY_BITMAPS.wire_name, "\n".join(lines) or "no disks"))
    return rows


def _statistics_lines(statistics: JobStatistics) -> str:
    lines = []
    for field in dataclasses.fields(statistics):
        value = getattr(statistics, field.name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, enum.Enum):
            value = value.name.lower()
        lines.append(f"{field.name}: {value}")
    return "\n".join(lines) or "none reported"
