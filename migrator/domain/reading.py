"""Reading an element so that nothing in it goes unnoticed.

Every parse function reads what it knows through :class:`ElementReader`; when it is done,
whatever it did not read (an attribute, a child element, text) is refused by name. This is
how the parser never drops a part of the definition silently.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from lxml import etree

from migrator.domain.errors import (
    InvalidDomainXML,
    UnsupportedAttribute,
    UnsupportedElement,
    UnsupportedValue,
)

__all__ = ["ElementReader", "qualified_name", "reading"]

E = TypeVar("E", bound=enum.Enum)

_DECIMAL = re.compile(r"[+]?[0-9]+", re.ASCII)
_SIGNED_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX = re.compile(r"0[xX][0-9a-fA-F]+", re.ASCII)
_OCTAL = re.compile(r"0[0-7]+", re.ASCII)
_YES_NO = {"yes": True, "no": False}
_ON_OFF = {"on": True, "off": False}


def qualified_name(element: etree._Element, name: str | None = None) -> str:
    """Return the element's tag (or one of its attribute names) as people write it.

    A name in a namespace keeps the prefix declared for it (``qemu:commandline``).
    """
    qname = etree.QName(element.tag if name is None else name)
    namespace: str | None = qname.namespace
    if namespace is None:
        return qname.localname
    for prefix, uri in element.nsmap.items():
        if uri == namespace and prefix:
            return f"{prefix}:{qname.localname}"
    return f"{{{namespace}}}{qname.localname}"


class ElementReader:
    """One element being read; remembers what was read so that the rest can be refused."""

    def __init__(self, element: etree._Element, path: str) -> None:
        self.element = element
        self.path = path
        self.name = qualified_name(element)
        self._read_attributes: set[str] = set()
        self._read_children: set[etree._Element] = set()
        self._text_read = False

    # ----------------------------------------------------------------- attributes

    def attribute(self, name: str) -> str | None:
        """Return attribute ``name``, or ``None`` when it is not written."""
        self._read_attributes.add(name)
        return self.element.get(name)

    def required(self, name: str) -> str:
        """Return attribute ``name``.

        Raises:
            InvalidDomainXML: the attribute is missing.
        """
        value = self.attribute(name)
        if value is None:
            raise self.invalid(f"missing attribute '{name}' of element {self.name}")
        return value

    def enum_attribute(self, name: str, kind: type[E], *, what: str) -> E | None:
        """Return attribute ``name`` as a member of ``kind``.

        Raises:
            UnsupportedValue: the value is not one of ``kind``'s (``what`` names it).
        """
        value = self.attribute(name)
        return None if value is None else self.to_enum(value, kind, what=what)

    def int_attribute(
        self, name: str, *, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        """Return attribute ``name`` as a decimal integer within the bounds.

        Raises:
            InvalidDomainXML: the value is not an integer, or out of bounds.
        """
        value = self.attribute(name)
        if value is None:
            return None
        return self.to_int(
            value,
            what=f"attribute '{name}' of element {self.name}",
            minimum=minimum,
            maximum=maximum,
        )

    def c_int_attribute(self, name: str, *, maximum: int) -> int | None:
        """Return attribute ``name`` written as C writes integers (``0x1f``, ``010``, ``8``).

        Raises:
            InvalidDomainXML: the value is not such an integer, or above ``maximum``.
        """
        value = self.attribute(name)
        if value is None:
            return None
        text = value.strip()
        if _HEX.fullmatch(text):
            number = int(text, 16)
        elif _OCTAL.fullmatch(text):
            number = int(text, 8)
        elif _DECIMAL.fullmatch(text):
            number = int(text)
        else:
            raise self.invalid(f"invalid attribute '{name}' of element {self.name}: '{value}'")
        if number > maximum:
            raise self.invalid(
                f"attribute '{name}' of element {self.name} is {number}, above {maximum}"
            )
        return number

    def yes_no(self, name: str) -> bool | None:
        """Return a ``yes``/``no`` attribute as a bool.

        Raises:
            InvalidDomainXML: the value is neither.
        """
        return self._boolean(name, _YES_NO)

    def on_off(self, name: str) -> bool | None:
        """Return an ``on``/``off`` attribute as a bool.

        Raises:
            InvalidDomainXML: the value is neither.
        """
        return self._boolean(name, _ON_OFF)

    def _boolean(self, name: str, spellings: dict[str, bool]) -> bool | None:
        value = self.attribute(name)
        if value is None:
            return None
        if value not in spellings:
            choices = "' or '".join(spellings)
            raise self.invalid(
                f"attribute '{name}' of element {self.name} must be '{choices}', not '{value}'"
            )
        return spellings[value]

    # ------------------------------------------------------------------- children

    def child(self, tag: str) -> etree._Element | None:
        """Return the only child element ``tag``, or ``None``.

        Raises:
            InvalidDomainXML: there is more than one.
        """
        found = self.children(tag)
        if len(found) > 1:
            raise self.invalid(f"element {tag} appears more than once in {self.name}")
        return found[0] if found else None

    def children(self, tag: str) -> list[etree._Element]:
        """Return every child element ``tag``, in document order."""
        found = [child for child in self.element.iterchildren(tag)]
        self._read_children.update(found)
        return found

    def take(self, child: etree._Element) -> None:
        """Mark ``child`` as read by a caller that walks the children itself."""
        self._read_children.add(child)

    def child_path(self, child: etree._Element) -> str:
        """Return the path of ``child``, indexed when it has siblings of its name."""
        name = qualified_name(child)
        siblings = list(self.element.iterchildren(child.tag))
        if len(siblings) == 1:
            return f"{self.path}/{name}"
        return f"{self.path}/{name}[{siblings.index(child) + 1}]"

    @contextmanager
    def read_child(self, tag: str) -> Iterator[ElementReader | None]:
        """Read the only child ``tag`` (``None`` when absent), refusing what goes unread."""
        element = self.child(tag)
        if element is None:
            yield None
            return
        with reading(element, self.child_path(element)) as reader:
            yield reader

    def child_text(self, tag: str) -> str | None:
        """Return the text of the only child ``tag``, which takes no attributes or children.

        Raises:
            InvalidDomainXML: the child appears more than once.
            UnsupportedElement: the child has attributes or children.
        """
        with self.read_child(tag) as child:
            return None if child is None else child.text()

    def flag(self, tag: str) -> bool:
        """Return whether the empty child ``tag`` (``<readonly/>``) is present."""
        with self.read_child(tag) as child:
            return child is not None

    # ----------------------------------------------------------------------- text

    def text(self) -> str:
        """Return the element's text (empty when there is none)."""
        self._text_read = True
        return self.element.text or ""

    def required_text(self) -> str:
        """Return the element's text.

        Raises:
            InvalidDomainXML: the text is empty.
        """
        text = self.text()
        if not text.strip():
            raise self.invalid(f"element {self.name} is empty")
        return text

    # ----------------------------------------------------------------- conversion

    def to_enum(self, value: str, kind: type[E], *, what: str) -> E:
        """Return ``value`` as a member of ``kind``.

        Raises:
            UnsupportedValue: it is not one.
        """
        try:
            return kind(value)
        except ValueError:
            raise UnsupportedValue(self.name, what=what, value=value, path=self.path) from None

    def to_int(self, value: str, *, what: str, minimum: int = 0, maximum: int | None = None) -> int:
        """Return ``value`` as a decimal integer within the bounds.

        Raises:
            InvalidDomainXML: it is not one, or out of bounds.
        """
        text = value.strip()
        if not _SIGNED_DECIMAL.fullmatch(text):
            raise self.invalid(f"invalid {what}: '{value}'")
        number = int(text)
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise self.invalid(f"{what} must be {bound}, not {number}")
        return number

    def invalid(self, message: str) -> InvalidDomainXML:
        """Return the error for a malformed value at this element."""
        return InvalidDomainXML(message, path=self.path)

    # --------------------------------------------------------------------- finish

    def finish(self) -> None:
        """Refuse whatever was not read: attributes, child elements, text.

        Raises:
            UnsupportedAttribute: an attribute nobody read.
            UnsupportedElement: a child element nobody read.
            InvalidDomainXML: text where none belongs.
        """
        for key in self.element.attrib:
            name = key if isinstance(key, str) else key.decode()
            if name not in self._read_attributes:
                raise UnsupportedAttribute(
                    self.name, qualified_name(self.element, name), path=self.path
                )
        for child in self.element.iterchildren():
            if child not in self._read_children:
                raise UnsupportedElement(qualified_name(child), path=self.child_path(child))
            if child.tail and child.tail.strip():
                raise self.invalid(
                    f"unexpected text in element {self.name}: '{child.tail.strip()}'"
                )
        if not self._text_read and self.element.text and self.element.text.strip():
            raise self.invalid(
                f"unexpected text in element {self.name}: '{self.element.text.strip()}'"
            )


@contextmanager
def reading(element: etree._Element, path: str) -> Iterator[ElementReader]:
    """Read ``element``; when the block ends without error, refuse what was not read."""
    reader = ElementReader(element, path)
    yield reader
    reader.finish()
