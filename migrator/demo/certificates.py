"""The demo's throwaway CA, a certificate for each host and one for the demo's client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from migrator.demo.guest import LOOPBACK
from transport import certdir

#: The common name of the demo client's certificate, on both hosts' allow-lists.
CLIENT_NAME = "demo-client"
#: The certificates live as long as the demo: a day is plenty.
VALID_DAYS = 1


@dataclass(frozen=True)
class DemoCertificates:
    """Where each certificate directory is (the :mod:`transport.certdir` host layout)."""

    ca_dir: Path
    hosts: Mapping[str, Path]
    client: Path


def create_certificates(directory: Path, *, hosts: Sequence[str]) -> DemoCertificates:
    """A new CA in ``directory``, and a certificate for each of ``hosts`` (reached at
    ``LOOPBACK``) and for the demo client.

    Raises:
        CertificateError: ``directory`` already holds a CA or certificates.
        OSError: the files cannot be written.
    """
    certdir.create_ca(directory, name="migrator-demo-ca", days=VALID_DAYS)
    host_dirs = {
        host: certdir.issue(directory, name=host, ips=[LOOPBACK], days=VALID_DAYS) for host in hosts
    }
    client = certdir.issue(directory, name=CLIENT_NAME, days=VALID_DAYS)
    return DemoCertificates(ca_dir=directory, hosts=host_dirs, client=client)
