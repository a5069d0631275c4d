"""The libvirt-compatible XML form: libvirt's cookies decode, ours read like libvirt's."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from lxml import etree

from cookies import (
    BlockDirtyBitmaps,
    Capability,
    Cookie,
    CookieError,
    DirtyBitmap,
    DirtyBitmapDisk,
    Feature,
    Graphics,
    GraphicsType,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    Network,
    NetworkInterface,
    VPortType,
    from_xml,
    to_xml,
)
from tests.cookies.conftest import GUEST_UUID, LIBVIRT_COOKIE, SOURCE_HOST

HEADER = f"""<name>vm1</name><uuid>{GUEST_UUID}</uuid>
<hostname>src.example</hostname><hostuuid>{SOURCE_HOST}</hostuuid>"""


def _attributes(root: etree._Element, path: str) -> dict[str, str]:
    element = root.find(path)
    assert element is not None, f"no {path}"
    return {str(name): str(value) for name, value in element.attrib.items()}


def _cookie_xml(body: str = "", *, header: str = HEADER) -> str:
    return f"<qemu-migration>{header}{body}</qemu-migration>"


def test_libvirt_example_decodes() -> None:
    cookie = from_xml(LIBVIRT_COOKIE.read_bytes())
    assert cookie == Cookie(
        name="vm1",
        uuid=GUEST_UUID,
        hostname="src.example",
        hostuuid=SOURCE_HOST,
        lockstate=LockState(
            "sanlock",
            b"vm1:__LIBVIRT__DISKS__:/var/lib/libvirt/sanlock/__LIBVIRT__DISKS__:1048576:9",
        ),
        nbd=Nbd(disks=(NbdDisk("vda", 21474836480),)),
        capabilities=(
            Capability("xbzrle", False),
            Capability("postcopy-ram", False),
            Capability("pause-before-switchover", True),
            Capability("multifd", False),
        ),
        block_dirty_bitmaps=BlockDirtyBitmaps(
            (DirtyBitmapDisk("vda", (DirtyBitmap("b0", "libvirt-vda-b0"),)),)
        ),
    )
    assert Feature.LOCKSTATE in cookie.mandatory_features


def test_libvirt_statistics_and_graphics_decode() -> None:
    body = """
      <graphics type='spice' port='5901' listen='0.0.0.0' tlsPort='-1'/>
      <statistics>
        <started>1717000000000</started><stopped>1717000012345</stopped>
        <sent>1717000012400</sent><delta>-12</delta>
        <time_elapsed>12400</time_elapsed><downtime>55</downtime>
        <memory_total>8589934592</memory_total><memory_dirty_rate>4096</memory_dirty_rate>
        <auto_converge_throttle>20</auto_converge_throttle>
        <some_future_counter>9</some_future_counter>
      </statistics>"""
    cookie = from_xml(_cookie_xml(body))
    assert cookie.graphics == Graphics(
        type=GraphicsType.SPICE, port=5901, tls_port=None, listen="0.0.0.0"
    )
    assert cookie.statistics == JobStatistics(
        started=1717000000000,
        stopped=1717000012345,
        sent=1717000012400,
        delta=-12,
        time_elapsed=12400,
        downtime=55,
        memory_total=8589934592,
        memory_dirty_rate=4096,
        auto_converge_throttle=20,
    )


def test_our_xml_uses_libvirts_names(cookie: Cookie) -> None:
    cookie = dataclasses.replace(
        cookie,
        memory_hotplug=True,
        cpu='<cpu mode="host-model"/>',
        network=Network(
            (NetworkInterface(index=0, vporttype=VPortType.OPENVSWITCH, portdata="p0"),)
        ),
        block_dirty_bitmaps=BlockDirtyBitmaps(
            (DirtyBitmapDisk("vda", (DirtyBitmap("b0", "a0"),)),)
        ),
    )
    root = etree.fromstring(to_xml(cookie))
    assert root.tag == "qemu-migration"
    assert [child.tag for child in root] == [
        "name",
        "uuid",
        "hostname",
        "hostuuid",
        "feature",
        "feature",
        "feature",
        "graphics",
        "lockstate",
        "domain",
        "network",
        "nbd",
        "statistics",
        "cpu",
        "capabilities",
        "blockDirtyBitmaps",
    ]
    assert [element.get("name") for element in root.findall("feature")] == [
        "lockstate",
        "persistent",
        "memory-hotplug",
    ]
    assert _attributes(root, "graphics") == {
        "type": "spice",
        "port": "5901",
        "listen": "192.0.2.1",
        "tlsPort": "5902",
    }
    assert root.findtext("lockstate/leases") == "vm1:lease:0"
    assert _attributes(root, "lockstate") == {"driver": "sanlock"}
    assert _attributes(root, "nbd") == {"port": "49153"}
    assert _attributes(root, "nbd/disk") == {"target": "vda", "capacity": "21474836480"}
    assert root.findtext("statistics/time_elapsed") == "1200"
    assert root.findtext("statistics/success") == "yes"
    assert root.findtext("statistics/operation") == "5"
    assert _attributes(root, "capabilities/cap[2]") == {
        "name": "pause-before-switchover",
        "auto": "yes",
    }
    assert _attributes(root, "network/interface") == {"index": "0", "vporttype": "openvswitch"}
    assert _attributes(root, "blockDirtyBitmaps/disk") == {"target": "vda"}
    assert _attributes(root, "blockDirtyBitmaps/disk/bitmap") == {"name": "b0", "alias": "a0"}
    assert from_xml(to_xml(cookie)) == cookie


def test_embedded_domain_keeps_its_own_layout(cookie: Cookie) -> None:
    domain = '<domain type="kvm">\n<name>vm1</name>\n    <devices/>\n</domain>'
    changed = dataclasses.replace(cookie, persistent=domain)
    text = to_xml(changed)
    assert domain in text
    assert from_xml(text).persistent == domain


def test_lock_state_without_leases_is_only_announced() -> None:
    cookie = from_xml(_cookie_xml("<feature name='lockstate'/>"))
    assert cookie.lockstate == LockState()
    text = to_xml(cookie)
    assert "<lockstate" not in text
    assert from_xml(text) == cookie


def test_unknown_optional_elements_are_ignored() -> None:
    body = "<hologram strength='9'/><nbd port='49153'><disk target='vda' capacity='1'/></nbd>"
    cookie = from_xml(_cookie_xml(body))
    assert cookie.features == {Feature.NBD}


def test_unknown_mandatory_feature_is_refused() -> None:
    with pytest.raises(CookieError, match=r"^Unknown migration cookie feature hologram$") as info:
        from_xml(_cookie_xml("<feature name='hologram'/><hologram/>"))
    assert info.value.feature == "hologram"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<qemu-migration>", "cookie is not valid XML: malformed XML"),
        ("", "cookie is not valid XML: XML document is empty"),
        (
            '<!DOCTYPE q [<!ENTITY e SYSTEM "file:///etc/passwd">]><qemu-migration/>',
            "cookie is not valid XML: XML with a DOCTYPE is not accepted",
        ),
        ("<domain/>", "the root element is <domain>, not <qemu-migration>"),
        (_cookie_xml(header=""), "^missing name element in migration data$"),
        (_cookie_xml(header="<name>vm1</name>"), "^missing uuid element in migration data$"),
        (
            _cookie_xml(header="<name>vm1</name><uuid>nope</uuid>"),
            "^malformed uuid element in migration data$",
        ),
        (
            _cookie_xml(header=f"<name>vm1</name><uuid>{GUEST_UUID}</uuid>"),
            "^missing hostname element in migration data$",
        ),
        (
            _cookie_xml(header=f"<name>v</name><uuid>{GUEST_UUID}</uuid><hostname>h</hostname>"),
            "^missing hostuuid element in migration data$",
        ),
        (
            _cookie_xml(
                header=f"<name>v</name><uuid>{GUEST_UUID}</uuid><hostname>h</hostname>"
                "<hostuuid>x</hostuuid>"
            ),
            "^malformed hostuuid element in migration data$",
        ),
        (_cookie_xml("<feature/>"), "^missing feature name$"),
        (_cookie_xml("<feature name='allowReboot'/>"), "Unsupported migration cookie feature"),
        (
            _cookie_xml("<feature name='persistent'/>"),
            "announces mandatory feature persistent but carries no data",
        ),
        (_cookie_xml("<graphics port='1' listen='x'/>"), "^missing type attribute in migration"),
        (
            _cookie_xml("<graphics type='holo' port='1' listen='x'/>"),
            "^unknown graphics type holo$",
        ),
        (_cookie_xml("<graphics type='vnc' listen='x'/>"), "^missing port attribute in migration"),
        (_cookie_xml("<graphics type='vnc' port='+1' listen='x'/>"), "malformed port attribute"),
        (_cookie_xml("<graphics type='vnc' port='99999' listen='x'/>"), "Graphics.port must be"),
        (
            _cookie_xml("<graphics type='spice' port='1' listen='x'/>"),
            "^missing tlsPort attribute in migration data$",
        ),
        (_cookie_xml("<graphics type='vnc' port='1'/>"), "^missing listen attribute in migration"),
        (_cookie_xml("<lockstate><leases/></lockstate>"), "^Missing lock driver name in migration"),
        (
            _cookie_xml("<domain/><domain/>"),
            "^Too many domain elements in migration cookie$",
        ),
        (_cookie_xml("<network><interface index='0'/></network>"), "missing vporttype attribute"),
        (
            _cookie_xml("<network><interface index='0' vporttype='x'/></network>"),
            "^unknown vporttype x$",
        ),
        (
            _cookie_xml("<network><interface vporttype='midonet'/></network>"),
            "^missing index attribute in migration data$",
        ),
        (_cookie_xml("<nbd port='x'/>"), "^Malformed nbd port 'x'$"),
        (_cookie_xml("<nbd><disk capacity='1'/></nbd>"), "^Malformed disk target$"),
        (_cookie_xml("<nbd><disk target='vda'/></nbd>"), "^Malformed disk capacity: 'None'$"),
        (
            _cookie_xml("<nbd><disk target='vda' capacity='1e9'/></nbd>"),
            "^Malformed disk capacity: '1e9'$",
        ),
        (
            _cookie_xml("<statistics><downtime>fast</downtime></statistics>"),
            "malformed statistics value downtime: 'fast'",
        ),
        (
            _cookie_xml("<statistics><success>1</success></statistics>"),
            "malformed statistics value success: '1'",
        ),
        (
            _cookie_xml("<statistics><operation>99</operation></statistics>"),
            "malformed statistics value operation: '99'",
        ),
        (_cookie_xml("<capabilities><cap/></capabilities>"), "^missing migration capability name$"),
        (
            _cookie_xml("<blockDirtyBitmaps><disk><bitmap/></disk></blockDirtyBitmaps>"),
            "^malformed <blockDirtyBitmaps> in migration cookie$",
        ),
        (
            _cookie_xml(
                "<blockDirtyBitmaps><disk target='vda'><bitmap name='b'/></disk>"
                "</blockDirtyBitmaps>"
            ),
            "^malformed <blockDirtyBitmaps> in migration cookie$",
        ),
    ],
)
def test_malformed_xml_is_refused_with_libvirts_messages(text: str, message: str) -> None:
    with pytest.raises(CookieError, match=message):
        from_xml(text)


def test_nbd_port_zero_means_no_port() -> None:
    assert from_xml(_cookie_xml("<nbd port='0'/>")).nbd == Nbd()


def test_oversize_refused_before_parsing() -> None:
    with pytest.raises(CookieError, match=r"^cookie is 51 bytes, over the limit of 50 bytes$"):
        from_xml("<" * 51, max_size=50)
    text = LIBVIRT_COOKIE.read_text()
    assert from_xml(text, max_size=len(text)).name == "vm1"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"persistent": "<domain>"}, "persistent definition is not valid XML"),
        ({"persistent": "<vm/>"}, "persistent definition must be a <domain> element, not <vm>"),
        ({"cpu": "<model>x</model>"}, "CPU definition must be a <cpu> element, not <model>"),
    ],
)
def test_embedded_documents_must_be_the_right_element(
    cookie: Cookie, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(CookieError, match=message):
        to_xml(dataclasses.replace(cookie, **changes))
