"""The data section: domain XML, cookie, padding; first write, read back, edit in place."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.saveimage import (
    HEADER_SIZE,
    PADDING,
    DataPart,
    ImageFormat,
    InvalidDataLength,
    InvalidText,
    Magic,
    SaveHeader,
    SaveImageError,
    TruncatedData,
    XmlTooLarge,
    build_data,
    build_image_prefix,
    parse_data,
    rewrite_data,
    stream_offset,
)
from tests.saveimage.libvirt_layout import c_header

XML = "<domain type='kvm'><name>vm1</name></domain>"
COOKIE = "<cookie><cpu mode='host-model'/><slirpHelper/></cookie>"

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))


def _complete(xml: str = XML, cookie: str | None = COOKIE) -> tuple[SaveHeader, bytes]:
    return build_data(
        xml=xml, cookie=cookie, was_running=True, format=ImageFormat.RAW, magic=Magic.COMPLETE
    )


def test_prefix_layout_matches_libvirt() -> None:
    prefix = build_image_prefix(
        xml=XML, cookie=COOKIE, was_running=True, format=ImageFormat.GZIP, magic=Magic.PARTIAL
    )
    xml_len = len(XML) + 1
    data_len = xml_len + len(COOKIE) + 1 + 64 * 1024
    assert prefix[:92] == c_header(
        b"LibvirtQemudPart",
        data_len=data_len,
        was_running=1,
        format_number=1,
        cookie_offset=xml_len,
    )
    data = prefix[92:]
    assert len(data) == data_len
    assert data[:xml_len] == XML.encode() + b"\0"
    assert data[xml_len : xml_len + len(COOKIE) + 1] == COOKIE.encode() + b"\0"
    assert data[xml_len + len(COOKIE) + 1 :] == bytes(PADDING)


def test_no_cookie_means_offset_zero() -> None:
    header, data = _complete(cookie=None)
    assert header.cookie_offset == 0
    assert header.data_len == len(XML) + 1 + PADDING
    assert data == XML.encode() + bytes(1 + PADDING)
    assert parse_data(header, data) == (XML, None)


def test_reads_libvirt_written_image() -> None:
    xml_bytes = "<domain><name>café</name></domain>".encode() + b"\0"
    cookie_bytes = COOKIE.encode() + b"\0"
    data = xml_bytes + cookie_bytes + bytes(PADDING)
    raw = c_header(
        b"LibvirtQemudSave",
        data_len=len(data),
        was_running=0,
        format_number=5,
        cookie_offset=len(xml_bytes),
    )
    image = raw + data + b"QEVM stream"
    header = SaveHeader.unpack(image)
    assert parse_data(header, image[HEADER_SIZE:]) == (
        "<domain><name>café</name></domain>",
        COOKIE,
    )
    assert image[stream_offset(header) :] == b"QEVM stream"


@given(
    xml=texts,
    cookie=st.none() | texts,
    was_running=st.booleans(),
    image_format=st.sampled_from(ImageFormat),
    magic=st.sampled_from(Magic),
)
def test_round_trip(
    xml: str, cookie: str | None, was_running: bool, image_format: ImageFormat, magic: Magic
) -> None:
    prefix = build_image_prefix(
        xml=xml, cookie=cookie, was_running=was_running, format=image_format, magic=magic
    )
    header, data = build_data(
        xml=xml, cookie=cookie, was_running=was_running, format=image_format, magic=magic
    )
    assert prefix == header.pack() + data
    complete = dataclasses.replace(header, magic=Magic.COMPLETE)
    assert SaveHeader.unpack(complete.pack()) == complete
    assert (complete.was_running, complete.format) == (was_running, image_format)
    assert parse_data(complete, data) == (xml, cookie)
    assert stream_offset(header) == len(prefix)
    assert (
        header.data_len
        == len(xml.encode()) + 1 + (0 if cookie is None else len(cookie.encode()) + 1) + PADDING
    )


@pytest.mark.parametrize(
    ("xml", "cookie", "part"),
    [
        ("<domain>\x00</domain>", None, DataPart.DOMAIN_XML),
        (XML, "<cookie>\x00", DataPart.COOKIE),
        ("<domain>\ud800</domain>", None, DataPart.DOMAIN_XML),
        (XML, "\udfff", DataPart.COOKIE),
    ],
)
def test_unstorable_text_is_refused(xml: str, cookie: str | None, part: DataPart) -> None:
    with pytest.raises(InvalidText, match=rf"^{part.value} in save image") as caught:
        _complete(xml=xml, cookie=cookie)
    assert caught.value.part is part
    header, _ = _complete()
    with pytest.raises(InvalidText):
        rewrite_data(header, xml=xml, cookie=cookie, was_running=None)


def _header(*, data_len: int, cookie_offset: int) -> SaveHeader:
    return SaveHeader(
        magic=Magic.COMPLETE,
        data_len=data_len,
        was_running=False,
        format=ImageFormat.RAW,
        cookie_offset=cookie_offset,
    )


def test_xml_without_nul_is_invalid_data_length() -> None:
    header = _header(data_len=8, cookie_offset=0)
    with pytest.raises(
        InvalidDataLength,
        match=r"^invalid header data length: 8 \(the domain XML is not NUL-terminated\)$",
    ):
        parse_data(header, b"<domain>")


def test_xml_running_into_cookie_is_invalid_data_length() -> None:
    # The NUL lies past cookie_offset: the XML does not fit in its part.
    header = _header(data_len=16, cookie_offset=4)
    with pytest.raises(InvalidDataLength, match=r"domain XML is not NUL-terminated"):
        parse_data(header, b"<dom>\0<c/>\0" + bytes(5))


def test_cookie_without_nul_is_invalid_data_length() -> None:
    header = _header(data_len=10, cookie_offset=3)
    with pytest.raises(InvalidDataLength, match=r"\(the cookie is not NUL-terminated\)$"):
        parse_data(header, b"<x\0<cookie>"[:10])


def test_cookie_offset_at_end_means_no_cookie() -> None:
    header = _header(data_len=5, cookie_offset=5)
    assert parse_data(header, b"<x/>\0") == ("<x/>", None)


def test_undecodable_xml() -> None:
    header = _header(data_len=4, cookie_offset=0)
    with pytest.raises(InvalidText, match=r"^domain XML in save image is not valid UTF-8"):
        parse_data(header, b"\xff\xfe\0\0")


@pytest.mark.parametrize(
    ("length", "part"), [(0, DataPart.DOMAIN_XML), (9, DataPart.DOMAIN_XML), (10, DataPart.COOKIE)]
)
def test_short_data_section(length: int, part: DataPart) -> None:
    header, data = _complete(xml="<domain/>", cookie="<cookie/>")
    with pytest.raises(TruncatedData, match=rf"^failed to read {part.value}: {length} of"):
        parse_data(header, data[:length])


def test_data_shorter_than_data_len_by_one() -> None:
    header, data = _complete()
    with pytest.raises(TruncatedData) as caught:
        parse_data(header, data[:-1])
    assert (caught.value.expected, caught.value.actual) == (header.data_len, header.data_len - 1)


@given(
    xml=texts,
    cookie=st.none() | texts,
    new_xml=texts,
    new_cookie=st.none() | texts,
    was_running=st.none() | st.booleans(),
    magic=st.sampled_from(Magic),
)
def test_rewrite_keeps_magic_and_stream_offset(
    *,
    xml: str,
    cookie: str | None,
    new_xml: str,
    new_cookie: str | None,
    was_running: bool | None,
    magic: Magic,
) -> None:
    header, _ = build_data(
        xml=xml, cookie=cookie, was_running=True, format=ImageFormat.XZ, magic=magic
    )
    new_header, data = rewrite_data(header, xml=new_xml, cookie=new_cookie, was_running=was_running)
    assert new_header.magic is magic
    assert (new_header.version, new_header.format) == (header.version, header.format)
    assert new_header.data_len == header.data_len == len(data)
    assert stream_offset(new_header) == stream_offset(header)
    assert new_header.was_running is (True if was_running is None else was_running)
    assert parse_data(new_header, data) == (new_xml, new_cookie)


def test_rewrite_can_fill_the_padding_exactly() -> None:
    header, _ = _complete(cookie=None)
    new_xml = "x" * (header.data_len - 1)
    new_header, data = rewrite_data(header, xml=new_xml, cookie=None, was_running=False)
    assert data == new_xml.encode() + b"\0"
    assert new_header.was_running is False
    assert parse_data(new_header, data) == (new_xml, None)


def test_rewrite_refuses_oversize_xml() -> None:
    header, _ = _complete(cookie=None)
    with pytest.raises(XmlTooLarge, match=r"^new xml too large to fit in file") as caught:
        rewrite_data(header, xml="x" * header.data_len, cookie=None, was_running=None)
    assert (caught.value.needed, caught.value.available) == (header.data_len + 1, header.data_len)


def test_rewrite_counts_the_cookie() -> None:
    header, _ = _complete(cookie=None)
    xml = "x" * (header.data_len - 3)
    with pytest.raises(XmlTooLarge):
        rewrite_data(header, xml=xml, cookie="cc", was_running=None)
    assert (
        rewrite_data(header, xml=xml, cookie="", was_running=None)[0].cookie_offset == len(xml) + 1
    )


@given(
    data_len=st.integers(min_value=1, max_value=64),
    cookie_offset=st.integers(min_value=0, max_value=64),
    data=st.binary(max_size=80),
)
def test_random_data_sections_raise_only_save_image_errors(
    data_len: int, cookie_offset: int, data: bytes
) -> None:
    try:
        header = _header(data_len=data_len, cookie_offset=cookie_offset)
        xml, cookie = parse_data(header, data)
    except SaveImageError:
        return
    assert "\0" not in xml and (cookie is None or "\0" not in cookie)
    assert len(xml.encode()) < (cookie_offset or data_len)
