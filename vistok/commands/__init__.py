"""Subcommands of the ``vistok`` CLI (see ``vistok.cli.COMMANDS``)."""
