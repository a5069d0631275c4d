"""Properties over generated domains: parse and format are inverses, the forms are stable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrator.domain import (
    Domain,
    FormatFlag,
    format_domain,
    inactive,
    migratable,
    parse_domain,
    with_defaults,
    without_secrets,
)
from tests.domain.strategies import domains

#: Every combination of the flags that need no host CPU description.
FLAG_SETS = st.sets(
    st.sampled_from([FormatFlag.SECURE, FormatFlag.INACTIVE, FormatFlag.MIGRATABLE])
).map(lambda flags: FormatFlag(sum(flags)))


@given(domains())
def test_parse_inverts_secure_format(domain: Domain) -> None:
    assert parse_domain(format_domain(domain, flags=FormatFlag.SECURE)) == domain


@given(domains(), FLAG_SETS)
def test_format_of_parse_is_a_fixed_point(domain: Domain, flags: FormatFlag) -> None:
    document = format_domain(domain, flags=flags)
    parsed = parse_domain(document)
    text = format_domain(parsed, flags=FormatFlag.SECURE)
    reparsed = parse_domain(text)
    assert reparsed == parsed
    assert format_domain(reparsed, flags=FormatFlag.SECURE) == text
    assert format_domain(parsed, flags=flags) == format_domain(reparsed, flags=flags)


@given(domains())
def test_flags_apply_their_form(domain: Domain) -> None:
    def formatted(flags: FormatFlag) -> Domain:
        return parse_domain(format_domain(domain, flags=flags))

    assert formatted(FormatFlag(0)) == without_secrets(domain)
    assert formatted(FormatFlag.SECURE | FormatFlag.INACTIVE) == inactive(domain)
    assert formatted(FormatFlag.SECURE | FormatFlag.MIGRATABLE) == migratable(domain)
    assert formatted(FormatFlag.SECURE | FormatFlag.MIGRATABLE | FormatFlag.INACTIVE) == (
        migratable(domain)
    )


@given(domains())
def test_forms_are_idempotent(domain: Domain) -> None:
    assert with_defaults(with_defaults(domain)) == with_defaults(domain)
    assert inactive(inactive(domain)) == inactive(domain)
    canonical = migratable(domain)
    assert migratable(canonical) == canonical
    assert migratable(inactive(domain)) == canonical
    assert migratable(with_defaults(domain)) == canonical


@given(domains())
def test_inactive_form_has_no_live_data(domain: Domain) -> None:
    form = inactive(domain)
    assert form.id is None
    for graphics in form.devices.graphics:
        assert not graphics.autoport or (graphics.port, graphics.tls_port) == (None, None)
    aliases = [
        device.alias
        for group in (form.devices.disks, form.devices.interfaces, form.devices.videos)
        for device in group
    ]
    assert all(alias is None or alias.startswith("ua-") for alias in aliases)
