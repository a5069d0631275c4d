"""Safe parsing of XML that crosses a trust boundary (peers, users, files on disk).

One parser for every package that reads XML: no DTD, no entity expansion, no network,
bounded size and depth. A DOCTYPE is refused outright.
"""

from __future__ import annotations

from lxml import etree

__all__ = ["DEFAULT_MAX_BYTES", "UnsafeXMLError", "parse_untrusted"]

#: Largest document accepted by default. A full domain definition is a few KiB; 4 MiB is
#: libvirt's cookie transport limit and comfortably above any legitimate input.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

#: Deepest element nesting accepted. libvirt domain XML nests about 6 levels.
MAX_DEPTH = 64

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class UnsafeXMLError(ValueError):
    """The input is not well-formed XML, or breaks one of the safety limits.

    ``reason`` says which, in words fit for an error message.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_untrusted(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``data`` into an element tree, refusing anything unsafe.

    Raises:
        UnsafeXMLError: oversize input, a DOCTYPE, nesting deeper than ``MAX_DEPTH``, or
            malformed XML.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise UnsafeXMLError(f"XML document is {len(raw)} bytes, over the limit of {max_bytes}")
    if not raw.strip():
        raise UnsafeXMLError("XML document is empty")
    try:
        root = etree.fromstring(raw, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXMLError(f"malformed XML: {exc}") from None
    # lxml-stubs lacks DocInfo.doctype, which lxml has had since 2.0.
    doctype: str = getattr(root.getroottree().docinfo, "doctype", "")
    if doctype:
        raise UnsafeXMLError("XML with a DOCTYPE is not accepted")
    if _depth(root) > MAX_DEPTH:
        raise UnsafeXMLError(f"XML nests deeper than {MAX_DEPTH} elements")
    return root


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest
