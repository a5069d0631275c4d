"""The migration parameter table: one enum, one row per migration parameter or capability.

Every form is generated from the rows of :data:`TABLE`, with no code per parameter:

- libvirt typed parameters + migration flags -> :class:`ParamSet` (:func:`from_typed`), with
  libvirt's validation rules and messages, and back (:func:`to_typed`,
  :func:`destination_typed`);
- :class:`ParamSet` -> QMP ``migrate-set-capabilities`` / ``migrate-set-parameters``
  arguments (:func:`to_qmp_capabilities`, :func:`to_qmp_parameters`), and a
  ``query-migrate-parameters`` reply -> :class:`ParamSet` (:func:`from_qmp_query`);
- :class:`ParamSet` <-> libvirt's ``<migParams>`` XML (:func:`to_xml`, :func:`from_xml`);
- :class:`ParamSet` <-> msgpack-friendly data (:func:`to_wire`, :func:`from_wire`).

Every function takes ``table=`` (default :data:`TABLE`). Errors are :class:`ParamsError`.
"""

from params.errors import ParamsError
from params.flags import MigrationFlag, Side, format_flags, parse_flags
from params.listing import describe
from params.paramset import ParamSet, compression_methods
from params.qmp import (
    capability_changes,
    from_qmp_query,
    reset_capabilities,
    startup_capabilities,
    to_qmp_capabilities,
    to_qmp_parameters,
)
from params.row import (
    DEFAULT_COMPRESSION,
    CompressionMethod,
    FlagMatch,
    FlagRule,
    Kind,
    Row,
    Unit,
    ValueType,
)
from params.table import TABLE, Param
from params.typed import destination_typed, from_typed, to_typed, typed_from_text
from params.values import Value
from params.wire import from_wire, to_wire
from params.xmlform import from_xml, to_xml

__all__ = [
    "DEFAULT_COMPRESSION",
    "TABLE",
    "CompressionMethod",
    "FlagMatch",
    "FlagRule",
    "Kind",
    "MigrationFlag",
    "Param",
    "ParamSet",
    "ParamsError",
    "Row",
    "Side",
    "Unit",
    "Value",
    "ValueType",
    "capability_changes",
    "compression_methods",
    "describe",
    "destination_typed",
    "format_flags",
    "from_qmp_query",
    "from_typed",
    "from_wire",
    "from_xml",
    "parse_flags",
    "reset_capabilities",
    "startup_capabilities",
    "to_qmp_capabilities",
    "to_qmp_parameters",
    "to_typed",
    "to_wire",
    "to_xml",
    "typed_from_text",
]
