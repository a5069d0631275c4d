"""The ``migrator`` command line: virsh's command names and flags where virsh has them.

Expected failures print one line on stderr and exit non-zero; no traceback reaches a user.
"""

from __future__ import annotations

from migrator.cli import domain_cmd, job_cmd, save_cmd
from migrator.cli.app import main
from migrator.cli.certs_cmd import certs_group
from migrator.cli.connection import add_connection_options
from migrator.cli.cookie_cmd import cookie_group
from migrator.cli.daemon_cmd import daemon_command
from migrator.cli.demo_cmd import demo_command
from migrator.cli.event_cmd import event_command
from migrator.cli.migrate_cmd import migrate_command
from migrator.cli.params_cmd import params_group
from migrator.cli.phases_cmd import phases_group
from migrator.cli.scenario_cmd import scenario_group

__all__ = ["main"]

for _group in (params_group, cookie_group, certs_group, phases_group, scenario_group):
    main.add_command(_group)

add_connection_options(main)
for _command in (
    *domain_cmd.COMMANDS,
    migrate_command,
    *job_cmd.COMMANDS,
    *save_cmd.COMMANDS,
    event_command,
    demo_command,
    daemon_command,
):
    main.add_command(_command)
