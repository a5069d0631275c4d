"""Parameter sets <-> libvirt's ``<migParams>`` XML (the status file's saved parameters).

libvirt writes ``<param name='max-bandwidth' value='33554432'/>`` for each set parameter
(yes/no for booleans). This form adds the engine's rows under their typed names (one
``<param>`` per value of a multi-valued row) and ``<capability name='xbzrle' state='yes'/>``
for each capability that is on; libvirt's own documents decode unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from params.errors import ParamsError
from params.lookup import index_of
from params.paramset import ParamSet
from params.row import Kind, Row
from params.table import TABLE, Param
from params.values import format_text, parse_text
from xmlsafe import UnsafeXMLError, parse_untrusted

ROOT = "migParams"
PARAM = "param"
CAPABILITY = "capability"


def to_xml(pset: ParamSet, *, table: Mapping[Param, Row] = TABLE) -> str:
    """``pset`` as a ``<migParams>`` document, rows in table order."""
    root = etree.Element(ROOT)
    for param, row in table.items():
        value = pset.values.get(param)
        if value is None:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            etree.SubElement(root, PARAM, name=row.key, value=format_text(item))
    for param, row in table.items():
        if param in pset.capabilities:
            etree.SubElement(root, CAPABILITY, name=row.key, state="yes")
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def from_xml(text: str | bytes, *, table: Mapping[Param, Row] = TABLE) -> ParamSet:
    """The parameter set of a ``<migParams>`` document. Other elements inside are ignored.

    Raises:
        ParamsError: unsafe or malformed XML, another root element, a ``<param>`` or
            ``<capability>`` without a name, with an unknown name or without a value or
            state, a value that does not parse or is invalid, or a single-valued parameter
            given twice.
    """
    try:
        root = parse_untrusted(text)
    except UnsafeXMLError as exc:
        raise ParamsError(f"cannot read <{ROOT}>: {exc.reason}") from None
    if root.tag != ROOT:
        raise ParamsError(f"expected a <{ROOT}> element, not <{root.tag}>")
    index = index_of(table).by_key
    given: dict[Param, list[object]] = {}
    capabilities: set[Param] = set()
    for element in root.iterchildren(PARAM, CAPABILITY):
        is_param = element.tag == PARAM
        what = "migration parameter" if is_param else "migration capability"
        name = element.get("name")
        if name is None:
            raise ParamsError(f"missing {what} name")
        param = index.get(name)
        if param is None or (table[param].kind is Kind.CAPABILITY) == is_param:
            raise ParamsError(f"unknown {what} '{name}'", name=name)
        attribute = "value" if is_param else "state"
        text_value = element.get(attribute)
        if text_value is None:
            raise ParamsError(f"missing {attribute} for {what} '{name}'", name=name)
        value = parse_text(table[param], text_value, name=name)
        if is_param:
            given.setdefault(param, []).append(value)
        elif value:
            capabilities.add(param)
    values = {
        param: items if table[param].multi or len(items) > 1 else items[0]
        for param, items in given.items()
    }
    return ParamSet.validated(values, capabilities, table=table)
