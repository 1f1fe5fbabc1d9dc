"""What every command of the CLI shares: exit statuses, one-line errors, JSON input, the typed client and the database.

A command raises CliError for every failure it foresees; cli.app prints it as
one `error:` line and exits with its status, so no command prints a traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

from complaint_client import CommandRejected, ComplaintClient
from config import Settings, SettingsError
from schemas import describe_validation_error
from workflows.start_input import workflow_id_for

PROG = "starter.py"

EXIT_OK = 0
EXIT_INFRA = 1
EXIT_BAD_INPUT = 2

# How long a command waits for Temporal or a worker to answer before saying which is missing.
DEFAULT_TIMEOUT = 20.0


class CliError(Exception):
    """Ends a command with one `error:` line on stderr and `status`."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- input --------------------------------------------------------------------


def read_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None


def read_json_file(path: str) -> Any:
    if path == "-":
        return read_json(sys.stdin.read(), "stdin")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {path}: not UTF-8 text") from None
    return read_json(text, path)


def json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CliError(f"{where} must be a JSON object (got {type(value).__name__})")
    return value


def validated(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise CliError(describe_validation_error(error, what)) from None


def check_complaint_id(complaint_id: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", complaint_id):
        raise CliError(f"complaint id must be 1 to 64 characters of letters, digits, '_' or '-' (got {complaint_id!r})")


# --- output -------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (headers, *rows)]
    return "\n".join(lines)


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def print_error(text: str) -> None:
    print(text.replace("\n", " "), file=sys.stderr)


# --- talking to Temporal --------------------------------------------------------


class Session:
    """The settings and a connected ComplaintClient, with errors turned into CliError."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.client: ComplaintClient | None = None

    @property
    def address(self) -> str:
        return self.settings.client_address

    def _unreachable(self) -> CliError:
        return CliError(
            f"cannot reach Temporal at {self.address} — start it with `make worker` or set TEMPORAL_ADDRESS",
            EXIT_INFRA,
        )

    async def connect(self) -> ComplaintClient:
        from stack.client import connect_client

        try:
            client = await asyncio.wait_for(
                connect_client(self.address, self.settings.namespace, settings=self.settings), self.timeout
            )
        except SettingsError as error:  # encryption keys, TLS files, API key: say which variable to fix
            raise CliError(str(error)) from None
        except (RuntimeError, OSError, asyncio.TimeoutError):
            raise self._unreachable() from None
        self.client = ComplaintClient(client, self.settings.task_queue)
        return self.client

    async def call(self, awaitable: Any, complaint_id: str | None = None, *, needs_worker: bool = True, hint: str = "") -> Any:
        """Await one client call, turning Temporal's errors into one-line CliErrors."""
        from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.service import RPCError, RPCStatusCode

        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if needs_worker:
                raise CliError(
                    f"no answer within {self.timeout:g}s — is a worker polling task queue "
                    f"'{self.settings.task_queue}' on {self.address}? Start one with `make worker`" + hint,
                    EXIT_INFRA,
                ) from None
            raise CliError(f"Temporal at {self.address} did not answer within {self.timeout:g}s", EXIT_INFRA) from None
        except CommandRejected as rejected:
            raise CliError(f"rejected ({rejected.kind}): {rejected.message}") from None
        except WorkflowUpdateFailedError as error:
            raise CliError(f"the case failed to apply the action: {error.cause or error}", EXIT_INFRA) from None
        except RPCError as error:
            message = str(error.message or error)
            if error.status == RPCStatusCode.NOT_FOUND:
                if "amespace" in message:
                    raise CliError(
                        f"namespace '{self.settings.namespace}' not found on Temporal at {self.address} "
                        "(set TEMPORAL_NAMESPACE)",
                        EXIT_INFRA,
                    ) from None
                if complaint_id is not None:
                    workflow_id = workflow_id_for(complaint_id)
                    if "completed" in message or "finished" in message:
                        raise CliError(
                            f"case {complaint_id} is finished: workflow {workflow_id} has completed and takes no more actions"
                        ) from None
                    raise CliError(f"no case {complaint_id} (workflow {workflow_id} not found)") from None
            if error.status == RPCStatusCode.INVALID_ARGUMENT:
                raise CliError(f"Temporal refused the request: {message}") from None
            if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise self._unreachable() from None
            raise CliError(f"Temporal at {self.address}: {message}", EXIT_INFRA) from None
        except SettingsError as error:  # a payload encrypted with a key this process lacks
            raise CliError(str(error), EXIT_INFRA) from None
        except RuntimeError as error:
            # The SDK's transport errors (a server gone mid-command) surface as RuntimeError.
            if "connect" in str(error).lower() or "transport" in str(error).lower():
                raise self._unreachable() from None
            raise


# --- the application database (PostgreSQL) ---------------------------------------


async def with_database(settings: Settings, timeout: float, work) -> Any:  # type: ignore[no-untyped-def]
    """Run `work(pool)` on a migrated pool: DATABASE_URL, else the embedded PostgreSQL."""
    import asyncpg

    from activities.db import create_pool, prepare_database
    from stack import redact_url

    embedded = None
    if settings.database_url is None:
        from stack.postgres import start_embedded_postgres

        try:
            embedded = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
        except Exception as error:  # the wheel raises several kinds; the message is what matters
            raise CliError(
                f"could not start the embedded PostgreSQL in {settings.data_dir / 'postgres'}: "
                f"{first_line(error)} (or set DATABASE_URL)",
                EXIT_INFRA,
            ) from None
        url, where = embedded.url, f"the embedded PostgreSQL in {settings.data_dir / 'postgres'}"
    else:
        url, where = settings.database_url, redact_url(settings.database_url)
    try:
        try:
            pool = await asyncio.wait_for(create_pool(url, min_size=1, max_size=2, timeout=timeout), timeout)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise CliError(f"cannot reach PostgreSQL at {where}: {first_line(error)} (set DATABASE_URL)", EXIT_INFRA) from None
        try:
            await prepare_database(pool, settings.database_owner_url)
            return await work(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise CliError(f"PostgreSQL at {where}: {first_line(error)}", EXIT_INFRA) from None
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
