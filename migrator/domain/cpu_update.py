"""``UPDATE_CPU``: a host-model CPU expanded into the concrete CPU of the host.

A host-model guest gets whatever model the host it starts on offers; before its definition
goes to another host, the model it actually got is written out, as libvirt does, so that
the other host starts the same CPU or refuses.
"""

from __future__ import annotations

from dataclasses import replace

from migrator.domain.errors import DomainError
from migrator.domain.model import Cpu, CpuFallback, CpuFeature, CpuMatch, CpuMode, Domain

__all__ = ["update_cpu"]


def update_cpu(domain: Domain, host_cpu: Cpu | None) -> Domain:
    """Return ``domain`` with a host-model CPU replaced by ``host_cpu``'s model.

    The result is a custom CPU with exact match and no fallback: the host's model and
    vendor, the host's features, and the domain's own features on top (the domain's policy
    wins). Its topology and check are kept. Other CPU modes are returned unchanged.

    Raises:
        DomainError: the domain has a host-model CPU and ``host_cpu`` is missing or names no
            model (code ``host-cpu-unknown``).
    """
    cpu = domain.cpu
    if cpu is None or cpu.mode is not CpuMode.HOST_MODEL:
        return domain
    if host_cpu is None or host_cpu.model is None:
        raise DomainError(
            "unknown host CPU model: a host-model CPU needs the host CPU description",
            code="host-cpu-unknown",
        )
    features: dict[str, CpuFeature] = {feature.name: feature for feature in host_cpu.features}
    features.update((feature.name, feature) for feature in cpu.features)
    expanded = replace(
        cpu,
        mode=CpuMode.CUSTOM,
        match=CpuMatch.EXACT,
        model=host_cpu.model,
        fallback=CpuFallback.FORBID,
        vendor=host_cpu.vendor,
        features=tuple(features.values()),
    )
    return replace(domain, cpu=expanded)
