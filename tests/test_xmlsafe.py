from __future__ import annotations

import pytest

from xmlsafe import MAX_DEPTH, UnsafeXMLError, parse_untrusted


def test_parses_plain_xml() -> None:
    root = parse_untrusted("<domain type='kvm'><name>vm1</name></domain>")
    assert root.findtext("name") == "vm1"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>', "DOCTYPE"),
        ("<a><b></a>", "malformed"),
        ("", "empty"),
        ("<a>" * (MAX_DEPTH + 1) + "</a>" * (MAX_DEPTH + 1), "deeper"),
    ],
)
def test_refuses_unsafe_input(document: str, reason: str) -> None:
    with pytest.raises(UnsafeXMLError, match=reason):
        parse_untrusted(document)


def test_refuses_oversize_input() -> None:
    with pytest.raises(UnsafeXMLError, match="over the limit"):
        parse_untrusted("<a>" + "x" * 100 + "</a>", max_bytes=50)


def test_billion_laughs_is_refused() -> None:
    levels = ['<!ENTITY l0 "lol">']
    levels += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    with pytest.raises(UnsafeXMLError):
        parse_untrusted(f"<!DOCTYPE d [{''.join(levels)}]><d>&l9;</d>")
