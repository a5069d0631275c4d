"""Hypothesis strategies for cookies: every record, every feature, any valid combination."""

from __future__ import annotations

from hypothesis import strategies as st
from lxml import etree

from cookies import (
    BlockDirtyBitmaps,
    Capability,
    Cookie,
    DirtyBitmap,
    DirtyBitmapDisk,
    Graphics,
    GraphicsType,
    JobOperation,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    Network,
    NetworkInterface,
    VPortType,
)
from cookies.schema import INT64_MAX, INT64_MIN, UINT64_MAX

# Every character XML 1.0 can carry (UTF-8 has no surrogates).
xml_char = st.characters(
    codec="utf-8", min_codepoint=0x20, exclude_characters="\ufffe\uffff"
) | st.sampled_from("\t\n\r")
xml_text = st.text(xml_char, max_size=20)
names = st.text(xml_char, min_size=1, max_size=20)
uuids = st.uuids().map(str)
ports = st.integers(0, 65535)
uint64 = st.integers(0, UINT64_MAX)


def _optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


graphics = st.builds(
    Graphics,
    type=st.sampled_from(GraphicsType),
    port=ports,
    tls_port=_optional(ports),
    listen=xml_text,
    cert_subject=_optional(xml_text),
)

lockstates = st.just(LockState()) | st.builds(
    LockState, names, xml_text.map(lambda text: text.encode("utf-8"))
)

networks = st.builds(
    Network,
    st.lists(
        st.builds(
            NetworkInterface,
            index=st.integers(0, 2**31 - 1),
            vporttype=st.sampled_from(VPortType),
            portdata=_optional(xml_text),
        ),
        max_size=4,
    ).map(tuple),
)

nbds = st.builds(
    Nbd,
    port=_optional(st.integers(1, 65535)),
    disks=st.lists(st.builds(NbdDisk, names, uint64), max_size=4).map(tuple),
)

statistics = st.builds(
    JobStatistics,
    **{
        name: _optional(uint64)
        for name in JobStatistics.__dataclass_fields__
        if name not in ("delta", "operation", "auto_converge_throttle", "success", "errmsg")
    },
    delta=_optional(st.integers(INT64_MIN, INT64_MAX)),
    operation=_optional(st.sampled_from(JobOperation)),
    auto_converge_throttle=_optional(st.integers(0, 100)),
    success=_optional(st.booleans()),
    errmsg=_optional(xml_text),
)

capabilities = st.lists(st.builds(Capability, names, st.booleans()), max_size=4).map(tuple)

bitmaps = st.builds(
    BlockDirtyBitmaps,
    st.lists(
        st.builds(
            DirtyBitmapDisk,
            names,
            st.lists(st.builds(DirtyBitmap, names, names), max_size=4).map(tuple),
        ),
        max_size=4,
    ).map(tuple),
)


def _element_xml(tag: str, attributes: dict[str, str], children: list[str]) -> str:
    element = etree.Element(tag, attributes)
    for text in children:
        etree.SubElement(element, "entry").text = text
    # Serialized as lxml writes a parsed element: the form the XML form gives back.
    return etree.tostring(etree.fromstring(etree.tostring(element)), encoding="unicode")


_attribute_names = st.sampled_from(["type", "mode", "check", "id"])
domains = st.builds(
    _element_xml,
    st.just("domain"),
    st.dictionaries(_attribute_names, xml_text, max_size=3),
    st.lists(xml_text, max_size=4),
)
cpus = st.builds(
    _element_xml,
    st.just("cpu"),
    st.dictionaries(_attribute_names, xml_text, max_size=3),
    st.lists(xml_text, max_size=2),
)

cookies = st.builds(
    Cookie,
    name=names,
    uuid=uuids,
    hostname=names,
    hostuuid=uuids,
    graphics=_optional(graphics),
    lockstate=_optional(lockstates),
    persistent=_optional(domains),
    network=_optional(networks),
    nbd=_optional(nbds),
    statistics=_optional(statistics),
    memory_hotplug=st.booleans(),
    cpu_hotplug=st.booleans(),
    cpu=_optional(cpus),
    capabilities=_optional(capabilities),
    block_dirty_bitmaps=_optional(bitmaps),
)
