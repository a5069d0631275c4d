"""Parameter sets <-> libvirt's <migParams> XML."""

from __future__ import annotations

import pytest

from params import MigrationFlag, Param, ParamsError, ParamSet, Side, from_typed, from_xml, to_xml
from xmlsafe import parse_untrusted

#: As libvirt's qemuMigrationParamsFormat writes it into the status XML.
LIBVIRT_MIGPARAMS = """<migParams>
  <param name='compress-level' value='1'/>
  <param name='compress-threads' value='8'/>
  <param name='decompress-threads' value='2'/>
  <param name='cpu-throttle-initial' value='20'/>
  <param name='cpu-throttle-increment' value='10'/>
  <param name='tls-creds' value=''/>
  <param name='tls-hostname' value=''/>
  <param name='max-bandwidth' value='33554432'/>
  <param name='downtime-limit' value='300'/>
  <param name='block-incremental' value='no'/>
  <param name='xbzrle-cache-size' value='67108864'/>
  <param name='max-postcopy-bandwidth' value='0'/>
  <param name='multifd-channels' value='2'/>
</migParams>
"""


def test_libvirt_status_xml_decodes() -> None:
    pset = from_xml(LIBVIRT_MIGPARAMS)
    assert pset.get(Param.MAX_BANDWIDTH) == 33554432
    assert pset.get(Param.BLOCK_INCREMENTAL) is False
    assert pset.get(Param.TLS_CREDS) == ""
    assert pset.get(Param.MULTIFD_CHANNELS) == 2
    assert len(pset.values) == 13
    assert pset.capabilities == frozenset()


def test_format_is_libvirts_shape_plus_capabilities() -> None:
    pset = from_typed(
        {"bandwidth": 32, "compression": "xbzrle", "migrate_disks": ["vda", "vdb"]},
        flags=MigrationFlag.LIVE | MigrationFlag.AUTO_CONVERGE,
        side=Side.SOURCE,
    ).with_value(Param.BLOCK_INCREMENTAL, True)
    root = parse_untrusted(to_xml(pset))
    assert root.tag == "migParams"
    params = [(e.get("name"), e.get("value")) for e in root.iterchildren("param")]
    assert params == [
        ("max-bandwidth", "33554432"),
        ("block-incremental", "yes"),
        ("migrate_disks", "vda"),
        ("migrate_disks", "vdb"),
        ("compression", "xbzrle"),
    ]
    caps = [(e.get("name"), e.get("state")) for e in root.iterchildren("capability")]
    assert caps == [("xbzrle", "yes"), ("auto-converge", "yes"), ("return-path", "yes")]
    assert from_xml(to_xml(pset)) == pset


def test_empty_set() -> None:
    assert from_xml(to_xml(ParamSet())) == ParamSet()
    assert from_xml("<migParams/>") == ParamSet()


def test_capabilities_said_no_are_off_and_other_elements_ignored() -> None:
    text = (
        "<migParams><capability name='xbzrle' state='no'/>"
        "<capability name='multifd' state='yes'/><future/></migParams>"
    )
    assert from_xml(text) == ParamSet({}, frozenset({Param.MULTIFD}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<migParams><param value='1'/></migParams>", "missing migration parameter name"),
        (
            "<migParams><param name='speed' value='1'/></migParams>",
            "unknown migration parameter 'speed'",
        ),
        (
            "<migParams><param name='xbzrle' value='yes'/></migParams>",
            "unknown migration parameter 'xbzrle'",
        ),
        (
            "<migParams><capability name='max-bandwidth' state='yes'/></migParams>",
            "unknown migration capability 'max-bandwidth'",
        ),
        ("<migParams><capability state='yes'/></migParams>", "missing migration capability name"),
        (
            "<migParams><capability name='xbzrle'/></migParams>",
            "missing state for migration capability 'xbzrle'",
        ),
        (
            "<migParams><param name='downtime-limit'/></migParams>",
            "missing value for migration parameter 'downtime-limit'",
        ),
        (
            "<migParams><param name='downtime-limit' value='fast'/></migParams>",
            "invalid value 'fast' for migration parameter 'downtime-limit'",
        ),
        (
            "<migParams><param name='block-incremental' value='true'/></migParams>",
            "invalid value 'true' for migration parameter 'block-incremental'",
        ),
        (
            "<migParams><param name='downtime-limit' value='2000001'/></migParams>",
            "migration parameter 'downtime-limit' must be between 0 and 2000000",
        ),
        (
            "<migParams><param name='downtime-limit' value='1'/>"
            "<param name='downtime-limit' value='2'/></migParams>",
            "parameter 'downtime-limit' occurs multiple times",
        ),
        (
            "<migParams><param name='compression' value='mt'/></migParams>",
            "compression method 'mt' needs 'compress' to carry it",
        ),
        ("<domain/>", "expected a <migParams> element, not <domain>"),
        ("<migParams>", "cannot read <migParams>: malformed XML"),
        (
            '<!DOCTYPE x [<!ENTITY a "b">]><migParams/>',
            "cannot read <migParams>: XML with a DOCTYPE is not accepted",
        ),
    ],
)
def test_bad_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        from_xml(text)
