"""A directory of domain definitions, one ``NAME.xml`` file per domain."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from migrator.daemon.atomic import atomic_write, remove_file
from migrator.daemon.errors import StateDirError
from migrator.daemon.names import named_files, named_path
from migrator.domain import Domain, DomainError, FormatFlag, format_domain, parse_domain

SUFFIX = ".xml"


class DefinitionFiles:
    """The definitions kept in ``directory``, written in the form ``flags`` ask for.

    Remembers what it last read or wrote, so that :meth:`sync` rewrites only what changed.
    """

    def __init__(self, directory: Path, *, flags: FormatFlag) -> None:
        self.directory = directory
        self.flags = flags
        self._written: dict[str, Domain] = {}

    def load(self) -> dict[str, Domain]:
        """Every definition in the directory, by name.

        Raises:
            StateDirError: a file cannot be read, is not a valid definition, or holds a
                domain whose name is not the file's.
        """
        domains = {name: self._read(path) for name, path in self._files().items()}
        self._written = dict(domains)
        return domains

    def save(self, domain: Domain) -> None:
        """Write ``domain``'s definition, replacing any earlier one.

        Raises:
            StateDirError: the name cannot name a file, the definition cannot be written
                as XML, or the file cannot be written.
        """
        path = self._path(domain.name)
        try:
            xml = format_domain(domain, flags=self.flags)
        except DomainError as exc:
            raise StateDirError(
                f"cannot write the definition of '{domain.name}': {exc}", path=path
            ) from None
        atomic_write(path, xml.encode("utf-8"))
        self._written[domain.name] = domain

    def remove(self, name: str) -> None:
        """Remove ``name``'s definition, if there is one.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be removed.
        """
        remove_file(self._path(name))
        self._written.pop(name, None)

    def sync(self, domains: Mapping[str, Domain]) -> None:
        """Make the directory hold exactly ``domains``, writing only what changed.

        Raises:
            StateDirError: as :meth:`save` and :meth:`remove`.
        """
        for name in self._files().keys() - domains.keys():
            self.remove(name)
        for domain in domains.values():
            if self._written.get(domain.name) != domain:
                self.save(domain)

    def _path(self, name: str) -> Path:
        return named_path(self.directory, name, suffix=SUFFIX)

    def _files(self) -> dict[str, Path]:
        return named_files(self.directory, suffix=SUFFIX)

    def _read(self, path: Path) -> Domain:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StateDirError(f"cannot read {path}: {exc.strerror or exc}", path=path) from None
        try:
            domain = parse_domain(data)
        except DomainError as exc:
            raise StateDirError(f"{path} is not a valid definition: {exc}", path=path) from None
        expected = path.name.removesuffix(SUFFIX)
        if domain.name != expected:
            raise StateDirError(f"{path} holds domain '{domain.name}', not '{expected}'", path=path)
        return domain
