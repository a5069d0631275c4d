"""The simulator's TLS credentials: objects as QEMU keeps them, looked up only as the stream
connects, and a stream that fails when its two ends do not agree on TLS."""

from __future__ import annotations

import pytest

from migrator.drivers.base import (
    TLS_CREDENTIALS_ID,
    DriverError,
    MigrationStatus,
    TLSEndpoint,
)
from migrator.drivers.sim import CommandRecord, Operation, SimInstance
from migrator.drivers.sim.migration import TLS_HANDSHAKE_FAILED

from .simkit import DESTINATION, SOURCE, Pair, certs

TLS_ON = {"tls-creds": TLS_CREDENTIALS_ID}


async def test_a_host_without_certificates_cannot_create_credentials() -> None:
    pair = Pair()
    source, _destination, _uri = await pair.prepare()
    with pytest.raises(DriverError, match="no certificate directory"):
        await source.add_tls_credentials(TLSEndpoint.CLIENT)
    assert not [
        record
        for record in pair.world.trace
        if isinstance(record, CommandRecord) and record.operation is Operation.ADD_OBJECT
    ]


async def test_credentials_are_created_and_deleted_with_qemus_arguments() -> None:
    pair = Pair(tls=True)
    source, _destination, _uri = await pair.prepare()
    await source.add_tls_credentials(TLSEndpoint.CLIENT)
    await source.delete_tls_credentials()
    commands = [
        (record.operation, dict(record.arguments))
        for record in pair.world.trace
        if isinstance(record, CommandRecord)
        and record.operation in (Operation.ADD_OBJECT, Operation.DELETE_OBJECT)
    ]
    assert commands == [
        (
            Operation.ADD_OBJECT,
            {
                "qom-type": "tls-creds-x509",
                "id": TLS_CREDENTIALS_ID,
                "dir": str(certs(SOURCE)),
                "endpoint": "client",
                "verify-peer": True,
            },
        ),
        (Operation.DELETE_OBJECT, {"id": TLS_CREDENTIALS_ID}),
    ]


async def encrypt(instance: SimInstance, endpoint: TLSEndpoint) -> None:
    await instance.add_tls_credentials(endpoint)
    await instance.set_parameters(TLS_ON)


async def test_an_encrypted_migration_completes() -> None:
    pair = Pair(tls=True)
    source, destination, uri = await pair.prepare()
    await encrypt(source, TLSEndpoint.CLIENT)
    await encrypt(destination, TLSEndpoint.SERVER)
    assert (await pair.migrate(source, uri)).status is MigrationStatus.COMPLETED


async def test_credentials_for_the_wrong_end_fail_the_migration_at_setup() -> None:
    pair = Pair(tls=True)
    source, destination, uri = await pair.prepare()
    await encrypt(source, TLSEndpoint.SERVER)
    await encrypt(destination, TLSEndpoint.SERVER)
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == "Expected TLS credentials for a client endpoint"
    assert pair.statuses(SOURCE) == [MigrationStatus.SETUP, MigrationStatus.FAILED]


@pytest.mark.parametrize(
    ("source_end", "destination_end", "destination_creds"),
    [
        (TLSEndpoint.CLIENT, None, False),
        (None, TLSEndpoint.SERVER, True),
        (TLSEndpoint.CLIENT, None, True),
        (TLSEndpoint.CLIENT, TLSEndpoint.CLIENT, True),
    ],
    ids=["source-only", "destination-only", "destination-object-missing", "destination-as-client"],
)
async def test_ends_that_disagree_fail_the_handshake_and_the_destination_waits(
    source_end: TLSEndpoint | None,
    destination_end: TLSEndpoint | None,
    destination_creds: bool,
) -> None:
    pair = Pair(tls=True)
    source, destination, uri = await pair.prepare()
    if source_end is not None:
        await encrypt(source, source_end)
    if destination_end is not None:
        await destination.add_tls_credentials(destination_end)
    if destination_creds:
        await destination.set_parameters(TLS_ON)
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == TLS_HANDSHAKE_FAILED
    assert destination.alive
    assert pair.statuses(DESTINATION) == [MigrationStatus.SETUP]
