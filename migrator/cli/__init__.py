"""The ``migrator`` command line: virsh's command names and flags where virsh has them.

Expected failures print one line on stderr and exit non-zero; no traceback reaches a user.
"""

from __future__ import annotations

from migrator.cli.app import main
from migrator.cli.certs_cmd import certs_group
from migrator.cli.cookie_cmd import cookie_group
from migrator.cli.params_cmd import params_group
from migrator.cli.phases_cmd import phases_group

__all__ = ["main"]

for _group in (params_group, cookie_group, certs_group, phases_group):
    main.add_command(_group)
