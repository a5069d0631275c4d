"""Save, restore, managed save and save-image editing: the runtime over one host.

:class:`SaveOps` is what the daemon calls. A save writes libvirt's image layout
(:mod:`migrator.saveimage`) with libvirt's crash-safe protocol: partial magic, QEMU's
stream through a passed descriptor (through a compressor or a direct-I/O writer when
asked), sync, complete magic. A restore starts QEMU paused and lets it load the stream.
Managed saves live in one directory, one image per guest; a broken one is discarded and the
guest boots fresh. New XML for an image passes the ABI check against the saved guest, both
in the canonical form.

Every save and restore is recorded while it runs (:mod:`migrator.saving.records`); one that
a stopping or dying daemon left half done is resolved when the next one starts
(:meth:`SaveOps.recover`, :mod:`migrator.saving.recovery`).

Errors derive from :class:`SaveError` (tree in :mod:`migrator.saving.errors`).
"""

from migrator.saving.errors import (
    BadImage,
    BypassCacheUnsupported,
    DomainBusy,
    DomainStateError,
    HelperFailed,
    ImageIOError,
    NoManagedSave,
    RestoreFailed,
    SaveCancelled,
    SaveError,
    SaveFailed,
    UnsupportedFormat,
    XmlRejected,
)
from migrator.saving.job import SaveJob, SavePhase
from migrator.saving.ops import MANAGED_SAVE_SUFFIX, ManagedStart, ManagedStartOutcome, SaveOps
from migrator.saving.records import (
    MemorySaveRecordStore,
    SaveJobKind,
    SaveRecord,
    SaveRecordStore,
)
from migrator.saving.recovery import Recovered

__all__ = [
    "MANAGED_SAVE_SUFFIX",
    "BadImage",
    "BypassCacheUnsupported",
    "DomainBusy",
    "DomainStateError",
    "HelperFailed",
    "ImageIOError",
    "ManagedStart",
    "ManagedStartOutcome",
    "MemorySaveRecordStore",
    "NoManagedSave",
    "Recovered",
    "RestoreFailed",
    "SaveCancelled",
    "SaveError",
    "SaveFailed",
    "SaveJob",
    "SaveJobKind",
    "SaveOps",
    "SavePhase",
    "SaveRecord",
    "SaveRecordStore",
    "UnsupportedFormat",
    "XmlRejected",
]
