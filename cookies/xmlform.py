"""The XML form of a cookie: libvirt's ``<qemu-migration>`` document, both directions.

Element and attribute names, the ``<feature name='...'/>`` announcements of mandatory
features and the error messages follow libvirt's ``qemu_migration_cookie.c``, so that a
cookie produced by libvirt decodes and people who know libvirt can read ours. Elements this
module does not know are ignored (optional data from a newer peer).

The persistent definition travels as an embedded ``<domain>`` element and the CPU as a
``<cpu>`` element; reading them back gives their text as lxml serializes an element.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

import xmlsafe
from cookies.cookie import Cookie, require_announced
from cookies.errors import CookieError
from cookies.features import Feature, announced_feature
from cookies.limits import DEFAULT_MAX_SIZE, check_size
from cookies.records import (
    BlockDirtyBitmaps,
    Capability,
    DirtyBitmap,
    DirtyBitmapDisk,
    Graphics,
    GraphicsType,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    Network,
    NetworkInterface,
    VPortType,
)
from cookies.schema import FieldKind, FieldSpec, canonical_uuid, record_fields

ROOT_TAG = "qemu-migration"

# libvirt writes -1 as the TLS port of a SPICE server without TLS, and 0 as "no NBD port".
_NO_TLS_PORT = -1
_NO_NBD_PORT = 0

_INTEGER = re.compile(r"-?[0-9]{1,20}", re.ASCII)
_YES_NO = {"yes": True, "no": False}


def to_xml(cookie: Cookie) -> str:
    """Return ``cookie`` as a libvirt ``<qemu-migration>`` document.

    Raises:
        CookieError: ``persistent`` is not a ``<domain>`` document, or ``cpu`` not a
            ``<cpu>`` element.
    """
    root = etree.Element(ROOT_TAG)
    etree.SubElement(root, "name").text = cookie.name
    etree.SubElement(root, "uuid").text = cookie.uuid
    etree.SubElement(root, "hostname").text = cookie.hostname
    etree.SubElement(root, "hostuuid").text = cookie.hostuuid
    for feature in cookie.mandatory_features:
        etree.SubElement(root, "feature", name=feature.wire_name)
    # Embedded documents keep their own layout: placeholders stand in for them while the
    # rest is indented, and are swapped for the real elements afterwards.
    embedded: list[tuple[etree._Element, etree._Element]] = []
    if cookie.graphics is not None:
        _graphics_to_xml(root, cookie.graphics)
    # Lock state without a driver is only announced, as libvirt does.
    if cookie.lockstate is not None and cookie.lockstate.driver is not None:
        _lockstate_to_xml(root, driver=cookie.lockstate.driver, leases=cookie.lockstate.leases)
    if cookie.persistent is not None:
        document = _parse_document(cookie.persistent, tag="domain", what="persistent definition")
        embedded.append((etree.SubElement(root, "domain"), document))
    if cookie.network is not None:
        _network_to_xml(root, cookie.network)
    if cookie.nbd is not None:
        _nbd_to_xml(root, cookie.nbd)
    if cookie.statistics is not None:
        _statistics_to_xml(root, cookie.statistics)
    if cookie.cpu is not None:
        document = _parse_document(cookie.cpu, tag="cpu", what="CPU definition")
        embedded.append((etree.SubElement(root, "cpu"), document))
    if cookie.capabilities is not None:
        _capabilities_to_xml(root, cookie.capabilities)
    if cookie.block_dirty_bitmaps is not None:
        _bitmaps_to_xml(root, cookie.block_dirty_bitmaps)
    etree.indent(root, space="  ")
    for placeholder, document in embedded:
        document.tail = placeholder.tail
        root.replace(placeholder, document)
    return etree.tostring(root, encoding="unicode") + "\n"


def from_xml(text: str | bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Cookie:
    """Read a cookie from its ``<qemu-migration>`` XML form.

    The size limit is checked before parsing; parsing refuses DTDs, entities and deep
    nesting.

    Raises:
        CookieError: oversize or malformed XML, a missing or malformed element or
            attribute (libvirt's messages), or an unknown or unsupported mandatory feature.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    check_size(len(data), max_size=max_size)
    try:
        root = xmlsafe.parse_untrusted(data, max_bytes=max_size)
    except xmlsafe.UnsafeXMLError as exc:
        raise CookieError(f"cookie is not valid XML: {exc.reason}") from None
    if root.tag != ROOT_TAG:
        raise CookieError(
            f"not a migration cookie: the root element is <{root.tag}>, not <{ROOT_TAG}>"
        )
    announced = [
        announced_feature(_attribute(element, "name", error="missing feature name"))
        for element in root.findall("feature")
    ]
    graphics = root.find("graphics")
    network = root.find("network")
    nbd = root.find("nbd")
    statistics = root.find("statistics")
    capabilities = root.find("capabilities")
    bitmaps = root.find("blockDirtyBitmaps")
    cookie = Cookie(
        name=_text(root, "name"),
        uuid=_uuid(root, "uuid"),
        hostname=_text(root, "hostname"),
        hostuuid=_uuid(root, "hostuuid"),
        graphics=None if graphics is None else _graphics_from_xml(graphics),
        lockstate=_lockstate_from_xml(root, announced=Feature.LOCKSTATE in announced),
        persistent=_persistent_from_xml(root),
        network=None if network is None else _network_from_xml(network),
        nbd=None if nbd is None else _nbd_from_xml(nbd),
        statistics=None if statistics is None else _statistics_from_xml(statistics),
        memory_hotplug=Feature.MEMORY_HOTPLUG in announced,
        cpu_hotplug=Feature.CPU_HOTPLUG in announced,
        cpu=_document_text(root.find("cpu")),
        capabilities=None if capabilities is None else _capabilities_from_xml(capabilities),
        block_dirty_bitmaps=None if bitmaps is None else _bitmaps_from_xml(bitmaps),
    )
    require_announced(cookie, announced)
    return cookie


# --- header and embedded documents -------------------------------------------------------


def _text(root: etree._Element, tag: str) -> str:
    text = root.findtext(tag)
    if not text:
        raise CookieError(f"missing {tag} element in migration data")
    return text


def _uuid(root: etree._Element, tag: str) -> str:
    text = _text(root, tag)
    try:
        return canonical_uuid(text, field=tag)
    except CookieError:
        raise CookieError(f"malformed {tag} element in migration data") from None


def _parse_document(text: str, *, tag: str, what: str) -> etree._Element:
    try:
        element = xmlsafe.parse_untrusted(text)
    except xmlsafe.UnsafeXMLError as exc:
        raise CookieError(f"{what} is not valid XML: {exc.reason}") from None
    if element.tag != tag:
        raise CookieError(f"{what} must be a <{tag}> element, not <{element.tag}>")
    return element


def _persistent_from_xml(root: etree._Element) -> str | None:
    domains = root.findall("domain")
    if len(domains) > 1:
        raise CookieError("Too many domain elements in migration cookie", feature="persistent")
    return _document_text(domains[0] if domains else None)


def _document_text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return etree.tostring(element, encoding="unicode", with_tail=False)


# --- values ------------------------------------------------------------------------------


def _attribute(element: etree._Element, name: str, *, error: str) -> str:
    value = element.get(name)
    if not value:
        raise CookieError(error)
    return value


def _integer(text: str | None, *, error: str) -> int:
    if text is None or not _INTEGER.fullmatch(text):
        raise CookieError(error)
    return int(text)


def _yes_no(text: str, *, error: str) -> bool:
    value = _YES_NO.get(text)
    if value is None:
        raise CookieError(error)
    return value


# --- graphics ----------------------------------------------------------------------------


def _graphics_to_xml(root: etree._Element, graphics: Graphics) -> None:
    element = etree.SubElement(
        root,
        "graphics",
        type=graphics.type.value,
        port=str(graphics.port),
        listen=graphics.listen,
    )
    if graphics.tls_port is not None or graphics.type is GraphicsType.SPICE:
        tls_port = _NO_TLS_PORT if graphics.tls_port is None else graphics.tls_port
        element.set("tlsPort", str(tls_port))
    if graphics.cert_subject is not None:
        etree.SubElement(element, "cert", info="subject", value=graphics.cert_subject)


def _graphics_from_xml(element: etree._Element) -> Graphics:
    type_name = _attribute(element, "type", error="missing type attribute in migration data")
    try:
        graphics_type = GraphicsType(type_name)
    except ValueError:
        raise CookieError(f"unknown graphics type {type_name}", feature="graphics") from None
    port_text = element.get("port")
    if port_text is None:
        raise CookieError("missing port attribute in migration data", feature="graphics")
    port = _integer(port_text, error=f"malformed port attribute {port_text!r:.40}")
    tls_text = element.get("tlsPort")
    if tls_text is None and graphics_type is GraphicsType.SPICE:
        raise CookieError("missing tlsPort attribute in migration data", feature="graphics")
    tls_port = None
    if tls_text is not None:
        tls_port = _integer(tls_text, error=f"malformed tlsPort attribute {tls_text!r:.40}")
    listen = element.get("listen")
    if listen is None:
        raise CookieError("missing listen attribute in migration data", feature="graphics")
    cert = element.find("cert[@info='subject']")
    return Graphics(
        type=graphics_type,
        port=port,
        tls_port=None if tls_port == _NO_TLS_PORT else tls_port,
        listen=listen,
        cert_subject=None if cert is None else cert.get("value"),
    )


# --- lock state --------------------------------------------------------------------------


def _lockstate_to_xml(root: etree._Element, *, driver: str, leases: bytes) -> None:
    element = etree.SubElement(root, "lockstate", driver=driver)
    etree.SubElement(element, "leases").text = leases.decode("utf-8")


def _lockstate_from_xml(root: etree._Element, *, announced: bool) -> LockState | None:
    element = root.find("lockstate")
    if element is None:
        # libvirt announces lock state even when its lock manager has none to send.
        return LockState() if announced else None
    driver = _attribute(element, "driver", error="Missing lock driver name in migration cookie")
    leases = element.findtext("leases") or ""
    return LockState(driver, leases.encode("utf-8"))


# --- network -----------------------------------------------------------------------------


def _network_to_xml(root: etree._Element, network: Network) -> None:
    element = etree.SubElement(root, "network")
    for interface in network.interfaces:
        child = etree.SubElement(
            element,
            "interface",
            index=str(interface.index),
            vporttype=interface.vporttype.value,
        )
        if interface.portdata is not None:
            etree.SubElement(child, "portdata").text = interface.portdata


def _network_from_xml(element: etree._Element) -> Network:
    interfaces = []
    for child in element.findall("interface"):
        vporttype = _attribute(
            child, "vporttype", error="missing vporttype attribute in migration data"
        )
        try:
            port_type = VPortType(vporttype)
        except ValueError:
            raise CookieError(f"unknown vporttype {vporttype}", feature="network") from None
        index = child.get("index")
        if index is None:
            raise CookieError("missing index attribute in migration data", feature="network")
        portdata = child.find("portdata")
        interfaces.append(
            NetworkInterface(
                index=_integer(index, error=f"malformed index attribute {index!r:.40}"),
                vporttype=port_type,
                portdata=None if portdata is None else portdata.text or "",
            )
        )
    return Network(tuple(interfaces))


# --- NBD ---------------------------------------------------------------------------------


def _nbd_to_xml(root: etree._Element, nbd: Nbd) -> None:
    element = etree.SubElement(root, "nbd")
    if nbd.port is not None:
        element.set("port", str(nbd.port))
    for disk in nbd.disks:
        etree.SubElement(element, "disk", target=disk.target, capacity=str(disk.capacity))


def _nbd_from_xml(element: etree._Element) -> Nbd:
    port_text = element.get("port")
    port = None
    if port_text is not None:
        port = _integer(port_text, error=f"Malformed nbd port {port_text!r:.40}")
    disks = []
    for child in element.findall("disk"):
        capacity = child.get("capacity")
        disks.append(
            NbdDisk(
                _attribute(child, "target", error="Malformed disk target"),
                _integer(capacity, error=f"Malformed disk capacity: {str(capacity)!r:.40}"),
            )
        )
    return Nbd(port=None if port == _NO_NBD_PORT else port, disks=tuple(disks))


# --- statistics --------------------------------------------------------------------------


def _statistics_to_xml(root: etree._Element, statistics: JobStatistics) -> None:
    element = etree.SubElement(root, "statistics")
    for spec in record_fields(JobStatistics):
        value = getattr(statistics, spec.name)
        if value is None:
            continue
        if spec.kind is FieldKind.BOOL:
            text = "yes" if value else "no"
        elif spec.kind is FieldKind.TEXT:
            text = value
        else:
            text = str(int(value))
        etree.SubElement(element, spec.name).text = text


def _statistics_from_xml(element: etree._Element) -> JobStatistics:
    values: dict[str, Any] = {}
    for spec in record_fields(JobStatistics):
        child = element.find(spec.name)
        if child is not None:
            values[spec.name] = _statistic(spec, child.text or "")
    return JobStatistics(**values)


def _statistic(spec: FieldSpec, text: str) -> object:
    error = f"malformed statistics value {spec.name}: {text!r:.40}"
    if spec.kind is FieldKind.TEXT:
        return text
    if spec.kind is FieldKind.BOOL:
        return _yes_no(text, error=error)
    number = _integer(text, error=error)
    if spec.kind is FieldKind.ENUM:
        try:
            return spec.value_type(number)
        except ValueError:
            raise CookieError(error, feature="statistics") from None
    return number


# --- capabilities ------------------------------------------------------------------------


def _capabilities_to_xml(root: etree._Element, capabilities: tuple[Capability, ...]) -> None:
    element = etree.SubElement(root, "capabilities")
    for capability in capabilities:
        etree.SubElement(
            element, "cap", name=capability.name, auto="yes" if capability.auto else "no"
        )


def _capabilities_from_xml(element: etree._Element) -> tuple[Capability, ...]:
    return tuple(
        Capability(
            _attribute(child, "name", error="missing migration capability name"),
            child.get("auto") == "yes",
        )
        for child in element.findall("cap")
    )


# --- block dirty bitmaps -----------------------------------------------------------------


def _bitmaps_to_xml(root: etree._Element, bitmaps: BlockDirtyBitmaps) -> None:
    element = etree.SubElement(root, "blockDirtyBitmaps")
    for disk in bitmaps.disks:
        child = etree.SubElement(element, "disk", target=disk.target)
        for bitmap in disk.bitmaps:
            etree.SubElement(child, "bitmap", name=bitmap.name, alias=bitmap.alias)


def _bitmaps_from_xml(element: etree._Element) -> BlockDirtyBitmaps:
    error = "malformed <blockDirtyBitmaps> in migration cookie"
    return BlockDirtyBitmaps(
        tuple(
            DirtyBitmapDisk(
                _attribute(disk, "target", error=error),
                tuple(
                    DirtyBitmap(
                        _attribute(bitmap, "name", error=error),
                        _attribute(bitmap, "alias", error=error),
                    )
                    for bitmap in disk.findall("bitmap")
                ),
            )
            for disk in element.findall("disk")
        )
    )
