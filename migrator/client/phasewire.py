"""The parameter maps and results of the migration phase methods (``migration.begin`` ...
``migration.abandon``), written by the callers (:mod:`migrator.client.remote`) and read by
the daemon, from one definition.

A malformed map raises :class:`~migrator.client.errors.ClientError` with code
``invalid-argument`` (the daemon answers with it) or ``bad-answer`` (a result).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

import params
from migrator.client.errors import INVALID_ARGUMENT, ClientError
from migrator.client.fields import Fields
from migrator.client.types import bad_answer
from migrator.runtime.destination import PrepareResult
from migrator.runtime.source import BeginResult
from params import MigrationFlag, Side

#: Every bit libvirt's migration flags define.
KNOWN_FLAGS = reduce(or_, MigrationFlag, MigrationFlag(0))


def request_fields(data: object, *, method: str) -> Fields:
    """The fields of the parameter map of ``method``."""
    return Fields(data, what=f"{method} parameters", error=_invalid)


def answer_fields(data: object, *, method: str) -> Fields:
    """The fields of the result map of ``method``."""
    return Fields(data, what=f"{method} result", error=bad_answer)


def read_flags(fields: Fields, key: str = "flags") -> MigrationFlag:
    """Migration flags from an integer field.

    Raises:
        ClientError: not an integer, negative, or with bits libvirt does not define.
    """
    value = fields.integer(key, minimum=0)
    unknown = value & ~int(KNOWN_FLAGS)
    if unknown:
        raise _invalid(f"unknown migration flags {unknown:#x}")
    return MigrationFlag(value)


@dataclass(frozen=True)
class BeginRequest:
    name: str
    flags: MigrationFlag
    typed: dict[str, object]

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "flags": int(self.flags), "typed": self.typed}

    @classmethod
    def from_wire(cls, data: object) -> BeginRequest:
        fields = request_fields(data, method="migration.begin")
        return cls(
            name=fields.text("name"), flags=read_flags(fields), typed=fields.mapping("typed", {})
        )


@dataclass(frozen=True)
class PrepareRequest:
    cookie: bytes
    xml: str
    flags: MigrationFlag
    typed: dict[str, object]

    def to_wire(self) -> dict[str, Any]:
        return {
            "cookie": self.cookie,
            "xml": self.xml,
            "flags": int(self.flags),
            "typed": self.typed,
        }

    @classmethod
    def from_wire(cls, data: object) -> PrepareRequest:
        fields = request_fields(data, method="migration.prepare")
        return cls(
            cookie=fields.binary("cookie"),
            xml=fields.text("xml"),
            flags=read_flags(fields),
            typed=fields.mapping("typed", {}),
        )


@dataclass(frozen=True)
class PerformRequest:
    """``migration.perform``, and ``migration.perform_resume`` (whose cookie is empty)."""

    name: str
    uri: str
    cookie: bytes = b""

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "uri": self.uri, "cookie": self.cookie}

    @classmethod
    def from_wire(cls, data: object, *, method: str = "migration.perform") -> PerformRequest:
        fields = request_fields(data, method=method)
        return cls(
            name=fields.text("name"),
            uri=fields.text("uri"),
            cookie=fields.optional_binary("cookie") or b"",
        )


@dataclass(frozen=True)
class EndRequest:
    """``migration.finish`` and ``migration.confirm``: the other side's cookie (None when
    it has none) and whether the migration is being cancelled."""

    name: str
    cookie: bytes | None
    cancelled: bool

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "cookie": self.cookie, "cancelled": self.cancelled}

    @classmethod
    def from_wire(cls, data: object, *, method: str) -> EndRequest:
        fields = request_fields(data, method=method)
        return cls(
            name=fields.text("name"),
            cookie=fields.optional_binary("cookie"),
            cancelled=fields.flag("cancelled"),
        )


def name_request(name: str) -> dict[str, Any]:
    """The parameters of a method that names a domain and nothing else."""
    return {"name": name}


def read_name(data: object, *, method: str) -> str:
    """The ``name`` of a method that names a domain and nothing else."""
    return request_fields(data, method=method).text("name")


# -- results -------------------------------------------------------------------------------


def begin_result_to_wire(result: BeginResult) -> dict[str, Any]:
    return {"cookie": result.cookie, "xml": result.xml}


def begin_result_from_wire(data: object) -> BeginResult:
    fields = answer_fields(data, method="migration.begin")
    return BeginResult(cookie=fields.binary("cookie"), xml=fields.text("xml"))


def prepare_result_to_wire(result: PrepareResult) -> dict[str, Any]:
    return {"cookie": result.cookie, "uri": result.uri}


def prepare_result_from_wire(data: object) -> PrepareResult:
    fields = answer_fields(data, method="migration.prepare")
    return PrepareResult(cookie=fields.binary("cookie"), uri=fields.text("uri"))


def cookie_to_wire(cookie: bytes) -> dict[str, Any]:
    return {"cookie": cookie}


def cookie_from_wire(data: object, *, method: str) -> bytes:
    return answer_fields(data, method=method).binary("cookie")


def uri_to_wire(uri: str) -> dict[str, Any]:
    return {"uri": uri}


def uri_from_wire(data: object, *, method: str) -> str:
    return answer_fields(data, method=method).text("uri")


def _invalid(message: str) -> ClientError:
    return ClientError(message, code=INVALID_ARGUMENT)


def destination_typed(flags: MigrationFlag, typed: Mapping[str, object]) -> dict[str, object]:
    """The typed parameters the source's ``typed`` give the destination's Prepare (libvirt's
    ``qemuMigrationParamsDump``): those whose row applies to the destination.

    Raises:
        ParamsError: ``typed`` is invalid for ``flags``.
    """
    pset = params.from_typed(typed, flags=flags, side=Side.DESTINATION)
    return params.destination_typed(pset)[0]
