"""The complaints command line behind starter.py, one module per command group.

    cli.app            parse, dispatch, exit statuses (amain, main)
    cli.parser         every command's arguments; the action options come from schemas.ACTIONS
    cli.common         errors and exit statuses, JSON input, the Temporal session, the database
    cli.cases          start, the actions, show
    cli.fleet          list
    cli.roster         roster load, roster list
    cli.notifications  notifications list, notifications ack
    cli.codec_server   codec-server
"""

from cli.app import amain, configure_cli_logging, main

__all__ = ["amain", "configure_cli_logging", "main"]
