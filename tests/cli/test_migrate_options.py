"""``migrate``'s switches and options: the flags and typed parameters they give, virsh's
checks between them, and libvirt's messages for bad values (pure)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.cli.migrate_options import (
    EXCLUSIVE,
    FLAG_SWITCHES,
    REQUIRES,
    TYPED_OPTIONS,
    MigrateArguments,
    ValueForm,
    build_request,
    flags_of,
    typed_items,
)
from migrator.cli.migrate_policy import TimeoutAction
from migrator.cli.option_errors import OptionError
from params import TABLE, MigrationFlag, ParamsError, format_flags, parse_flags


def request(*switches: str, timeout_s: int | None = None, params=(), **options: str):
    arguments = MigrateArguments(
        switches=frozenset(switches),
        options={name.replace("_", "-"): value for name, value in options.items()},
        params=tuple(params),
        timeout_s=timeout_s,
    )
    return build_request(arguments)


def test_every_switch_names_its_own_flag() -> None:
    flags = [switch.flag for switch in FLAG_SWITCHES]
    assert len(set(flags)) == len(flags)
    assert len({switch.name for switch in FLAG_SWITCHES}) == len(FLAG_SWITCHES)
    for switch in FLAG_SWITCHES:
        assert flags_of([switch.name]) is switch.flag


@given(st.sets(st.sampled_from(FLAG_SWITCHES)))
def test_switches_combine_into_the_union_of_their_flags(switches) -> None:
    flags = flags_of(switch.name for switch in switches)
    expected = MigrationFlag(0)
    for switch in switches:
        expected |= switch.flag
    assert flags == expected
    assert parse_flags(format_flags(flags)) == flags


def test_every_typed_option_names_a_row_with_a_typed_name() -> None:
    names = [option.name for option in TYPED_OPTIONS]
    assert len(set(names)) == len(names)
    rows = {option.typed_name for option in TYPED_OPTIONS}
    assert len(rows) == len(TYPED_OPTIONS)
    for option in TYPED_OPTIONS:
        assert TABLE[option.param].typed_name == option.typed_name
        assert (option.form is ValueForm.LIST) == TABLE[option.param].multi


@given(
    st.sampled_from([option for option in TYPED_OPTIONS if option.form is ValueForm.TEXT]),
    st.text(string.ascii_letters + string.digits + "-_.:/=,", min_size=1, max_size=8),
)
def test_a_text_option_gives_its_typed_parameter_as_written(option, text) -> None:
    assert typed_items({option.name: text}) == [f"{option.typed_name}={text}"]


def test_the_virsh_options_the_command_documents() -> None:
    result = request("live", "p2p", "parallel", bandwidth="32", parallel_connections="4")
    assert result.flags == MigrationFlag.LIVE | MigrationFlag.PEER2PEER | MigrationFlag.PARALLEL
    assert result.typed == {"bandwidth": 32, "parallel.connections": 4}
    assert result.direct is False


def test_without_p2p_the_client_drives_both_daemons() -> None:
    assert request("live").direct is True
    assert request("live", "direct").direct is True
    assert request("live", "direct").flags == MigrationFlag.LIVE


def test_comp_methods_is_a_comma_separated_list() -> None:
    result = request("live", "compressed", comp_methods="xbzrle, mt", comp_mt_level="3")
    assert result.typed == {"compression": ["xbzrle", "mt"], "compression.mt.level": 3}


def test_xml_reads_the_destination_definition_from_a_file(tmp_path: Path) -> None:
    definition = tmp_path / "dest.xml"
    definition.write_text("<domain type='kvm'><name>a=b</name></domain>\n")
    result = request("live", xml=str(definition))
    assert result.typed == {"destination_xml": definition.read_text()}


def test_a_missing_xml_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        request("live", xml=str(tmp_path / "missing.xml"))


def test_param_gives_any_typed_parameter() -> None:
    result = request("live", "auto-converge", params=["auto_converge.initial=30"])
    assert result.typed == {"auto_converge.initial": 30}


def test_a_parameter_given_twice_is_refused_with_libvirts_message() -> None:
    with pytest.raises(ParamsError, match="parameter 'bandwidth' occurs multiple times"):
        request("live", params=["bandwidth=5"], bandwidth="10")


@pytest.mark.parametrize(
    ("switches", "options", "message"),
    [
        ((), {"parallel-connections": "4"}, "Turn parallel migration on to tune it"),
        (("auto-converge",), {"bandwidth": "ten"}, "invalid value 'ten' for migration parameter"),
        ((), {"comp-methods": "lz4"}, "Unsupported compression method 'lz4'"),
        (("parallel",), {"comp-methods": "mt"}, "isn't supported with parallel migration"),
        ((), {"comp-mt-level": "3"}, "Turn multithread compression on to tune it"),
    ],
)
def test_bad_values_and_combinations_get_libvirts_messages(switches, options, message) -> None:
    arguments = MigrateArguments(switches=frozenset({"live", *switches}), options=options)
    with pytest.raises(ParamsError, match=message):
        build_request(arguments)


def test_unknown_parameter() -> None:
    with pytest.raises(ParamsError, match="parameter 'nope' not supported"):
        request("live", params=["nope=1"])


@pytest.mark.parametrize(("first", "second"), EXCLUSIVE)
def test_exclusive_options(first: str, second: str) -> None:
    arguments = MigrateArguments(switches=frozenset({first, second}), options={}, timeout_s=5)
    with pytest.raises(OptionError, match=f"Options --{first} and --{second} are mutually"):
        build_request(arguments)


@pytest.mark.parametrize(("option", "needed"), REQUIRES)
def test_options_that_need_another(option: str, needed: str, tmp_path: Path) -> None:
    definition = tmp_path / "persistent.xml"
    definition.write_text("<domain/>")
    values = {"persistent-xml": str(definition), "tls-destination": "host-b"}
    options = {option: values[option]} if option in values else {}
    switches = {"live", "postcopy", "persistent", "tls"} | ({option} - set(values))
    arguments = MigrateArguments(
        switches=frozenset(switches - {needed}),
        options=options,
        timeout_s=None if needed == "timeout" else 5,
    )
    with pytest.raises(OptionError, match=f"Option --{needed} is required by option --{option}"):
        build_request(arguments)


def test_timeout_needs_a_live_migration() -> None:
    with pytest.raises(OptionError, match="Unexpected timeout for offline migration"):
        request("offline", "persistent", timeout_s=10)
    with pytest.raises(OptionError, match="Invalid timeout"):
        request("live", timeout_s=0)


def test_timeout_policy() -> None:
    assert request("live").policy.timeout_s is None
    suspend = request("live", timeout_s=30).policy
    assert (suspend.timeout_s, suspend.timeout_action) == (30, TimeoutAction.SUSPEND)
    postcopy = request("live", "postcopy", "timeout-postcopy", timeout_s=30).policy
    assert postcopy.timeout_action is TimeoutAction.POSTCOPY
    after = request("live", "postcopy", "postcopy-after-precopy").policy
    assert after.postcopy_after_precopy


def test_unknown_names_are_refused() -> None:
    with pytest.raises(OptionError, match="unknown migrate switch --warp"):
        flags_of(["warp"])
    with pytest.raises(OptionError, match="unknown migrate option --warp"):
        typed_items({"warp": "9"})
