"""Errors of the domain model: one root, :class:`DomainError`, under ``MigratorError``.

Error tree::

    DomainError                 anything wrong with a domain definition
    +-- InvalidDomainXML        unsafe or malformed XML, a missing or malformed value
    +-- UnsupportedElement      an element migrator cannot run, named
    |   +-- UnsupportedAttribute    an attribute migrator cannot run, named
    |   +-- UnsupportedValue        a value migrator cannot run ("unsupported disk type 'network'")
    +-- AbiMismatch             two definitions describe guests that differ in what the guest sees
"""

from __future__ import annotations

from migrator.errors import MigratorError


class DomainError(MigratorError):
    """Root of all errors raised by :mod:`migrator.domain`."""

    code = "domain-error"


class InvalidDomainXML(DomainError):
    """The document is unsafe or malformed, or a value in it is missing or malformed.

    Attributes:
        path: where in the document, as ``/domain/devices/disk[2]/target``, when known.
    """

    code = "invalid-domain-xml"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnsupportedElement(DomainError):
    """An element that would change the guest and that migrator cannot run.

    Attributes:
        element: the element's name (``hostdev``); prefixed (``qemu:commandline``) when it
            is in a namespace.
        path: where in the document.
    """

    code = "unsupported-element"

    def __init__(self, element: str, *, path: str, message: str | None = None) -> None:
        super().__init__(message or f"unsupported element: {element}")
        self.element = element
        self.path = path


class UnsupportedAttribute(UnsupportedElement):
    """An attribute that would change the guest and that migrator cannot run.

    Attributes:
        attribute: the attribute's name.
    """

    code = "unsupported-attribute"

    def __init__(self, element: str, attribute: str, *, path: str) -> None:
        super().__init__(
            element, path=path, message=f"unsupported attribute: {attribute} of {element}"
        )
        self.attribute = attribute


class UnsupportedValue(UnsupportedElement):
    """A value that migrator cannot run, such as disk type ``network``.

    Attributes:
        what: what the value says, in words (``disk type``).
        value: the value as written.
    """

    code = "unsupported-value"

    def __init__(self, element: str, *, what: str, value: str, path: str) -> None:
        super().__init__(element, path=path, message=f"unsupported {what} '{value}'")
        self.what = what
        self.value = value


class AbiMismatch(DomainError):
    """Two definitions describe guests that differ in something the guest can see.

    Attributes:
        field: the differing field, dotted (``cpu.model``, ``disk.count``, ``disk.address``).
        source: the source's value, as text (``<null>`` when absent).
        target: the target's value, as text.
    """

    code = "abi-mismatch"

    def __init__(self, message: str, *, field: str, source: str, target: str) -> None:
        super().__init__(message)
        self.field = field
        self.source = source
        self.target = target
