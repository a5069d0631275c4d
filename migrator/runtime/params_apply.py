"""Saving, applying and restoring QEMU's migration parameters around a job
(libvirt's ``qemuMigrationParamsCheck/Apply/Reset``)."""

from __future__ import annotations

from collections.abc import Iterable

import params
from migrator.drivers.base import Instance
from params import ParamSet, Side


async def save_originals(instance: Instance) -> ParamSet:
    """QEMU's migration parameters before the job changes any."""
    return params.from_qmp_query(await instance.query_parameters())


async def apply_params(
    instance: Instance,
    pset: ParamSet,
    *,
    side: Side,
    remote_caps: Iterable[str] | None,
    postcopy_resume: bool = False,
) -> None:
    """Set every supported capability explicitly, then the job's parameters. On post-copy
    resume, capabilities stay as they are and only the resume parameters are re-applied.

    Raises:
        ParamsError: a requested capability is not supported by this QEMU.
        DriverError: QEMU refused a setting.
    """
    if not postcopy_resume:
        supported = await instance.supported_capabilities()
        capabilities = params.to_qmp_capabilities(
            pset, supported=supported, remote_supported=remote_caps, side=side
        )
        await instance.set_capabilities(capabilities)
    arguments = params.to_qmp_parameters(pset, postcopy_resume=postcopy_resume)
    if arguments:
        await instance.set_parameters(arguments)


async def restore_params(instance: Instance, originals: ParamSet) -> None:
    """Turn every capability off and put the original parameters back."""
    supported = await instance.supported_capabilities()
    await instance.set_capabilities(params.reset_capabilities(supported=supported))
    arguments = params.to_qmp_parameters(originals)
    if arguments:
        await instance.set_parameters(arguments)
