"""`migrator params list` and `migrator params convert`, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from migrator.cli import main
from params import TABLE, from_wire, from_xml

ACCEPTANCE_XML = """<migParams>
  <param name='max-bandwidth' value='33554432'/>
  <param name='downtime-limit' value='300'/>
  <param name='compress-level' value='1'/>
  <param name='compress-threads' value='8'/>
  <param name='decompress-threads' value='2'/>
  <param name='cpu-throttle-initial' value='20'/>
  <param name='cpu-throttle-increment' value='10'/>
</migParams>
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["params", *args])


def test_acceptance_migparams_to_qmp(tmp_path: Path) -> None:
    source = tmp_path / "migparams.xml"
    source.write_text(ACCEPTANCE_XML)
    result = run("convert", "--xml", str(source), "--to", "qmp")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["migrate-set-parameters"] == {
        "max-bandwidth": 33554432,
        "downtime-limit": 300,
        "compress-level": 1,
        "compress-threads": 8,
        "decompress-threads": 2,
        "cpu-throttle-initial": 20,
        "cpu-throttle-increment": 10,
    }
    capabilities = document["migrate-set-capabilities"]["capabilities"]
    on = {item["capability"] for item in capabilities if item["state"]}
    assert on == {"pause-before-switchover"}
    assert len(capabilities) == 20


def test_list_json_has_every_row() -> None:
    result = run("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert len(rows) >= 40
    assert len(rows) == len(TABLE)
    bandwidth = next(row for row in rows if row["key"] == "max-bandwidth")
    assert bandwidth["typed_name"] == "bandwidth"
    assert bandwidth["factor"] == 1024 * 1024
    assert bandwidth["side"] == ["source"]


def test_list_for_people() -> None:
    result = run("list")
    assert result.exit_code == 0
    assert "max-bandwidth" in result.output
    assert "(auto_converge.initial)" in result.output


def test_typed_to_qmp_and_typed() -> None:
    typed = ["--typed", "auto_converge.initial=30", "--typed", "bandwidth=10"]
    result = run("convert", *typed, "--flags", "live,auto-converge", "--to", "qmp")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["migrate-set-parameters"] == {
        "cpu-throttle-initial": 30,
        "max-bandwidth": 10 * 1024 * 1024,
    }
    states = {
        i["capability"]: i["state"] for i in document["migrate-set-capabilities"]["capabilities"]
    }
    assert states["auto-converge"] is True
    back = json.loads(run("convert", *typed, "--flags", "auto_converge", "--to", "typed").output)
    assert back == {"params": {"auto_converge.initial": 30, "bandwidth": 10}, "flags": ""}


def test_destination_side() -> None:
    result = run(
        "convert",
        "--typed", "compression=xbzrle",
        "--typed", "auto_converge.initial=30",
        "--flags", "auto_converge",
        "--side", "destination",
        "--to", "typed",
    )  # fmt: skip
    assert json.loads(result.output) == {
        "params": {"compression": ["xbzrle"]},
        "flags": "compressed",
    }


def test_qmp_reply_to_xml_and_json(tmp_path: Path) -> None:
    reply = tmp_path / "reply.json"
    reply.write_text(json.dumps({"return": {"downtime-limit": 500, "tls-creds": ""}, "id": 7}))
    xml = run("convert", "--qmp", str(reply), "--to", "xml")
    assert xml.exit_code == 0, xml.output
    assert from_xml(xml.output).values
    wire = run("convert", "--qmp", str(reply), "--to", "json")
    assert from_wire(json.loads(wire.output)) == from_xml(xml.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--typed", "compression.mt.level=3"], "Turn multithread compression on to tune it"),
        (["--typed", "speed=3"], "parameter 'speed' not supported"),
        (["--flags", "live,fast"], "unknown migration flag 'fast'"),
        ([], "give exactly one input"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str) -> None:
    result = run("convert", *args)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {message}")
    assert len(result.output.strip().splitlines()) == 1


def test_two_inputs_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "migparams.xml"
    source.write_text(ACCEPTANCE_XML)
    result = run("convert", "--xml", str(source), "--typed", "bandwidth=1")
    assert result.exit_code == 1
    assert "give exactly one input" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "error: the --qmp file is not JSON"),
        ("[1, 2]", "error: the --qmp file must hold a JSON object"),
        ('{"max-bandwidth": "x"}', "error: invalid type 'string' for parameter 'max-bandwidth'"),
    ],
)
def test_bad_qmp_file(tmp_path: Path, content: str, message: str) -> None:
    reply = tmp_path / "reply.json"
    reply.write_text(content)
    result = run("convert", "--qmp", str(reply))
    assert result.exit_code == 1
    assert result.output.startswith(message)


def test_bad_xml_file(tmp_path: Path) -> None:
    source = tmp_path / "bad.xml"
    source.write_text("<domain/>")
    result = run("convert", "--xml", str(source), "--to", "qmp")
    assert result.exit_code == 1
    assert result.output == "error: expected a <migParams> element, not <domain>\n"
