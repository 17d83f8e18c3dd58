"""The dev server is ready when its frontend serves, not when its port opens: a client (a test's, a
worker's) that connects the moment `start()` returns is taken, after a restart too."""

from __future__ import annotations

import socket
from pathlib import Path

from bulkops.devstack.postgres import free_port
from bulkops.devstack.processes import port_ready
from bulkops.devstack.temporal import TemporalDevServer, frontend_serving, temporal_binary
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings


def test_an_open_port_is_not_a_serving_frontend() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_ready(port)()
        assert not frontend_serving(temporal_binary(), port)()


async def test_a_client_is_taken_as_soon_as_start_returns(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path / "temporal.db", free_port(), log_file=tmp_path / "temporal.log")
    settings = Settings(TEMPORAL_ADDRESS=f"127.0.0.1:{server.port}")
    try:
        for _ in range(2):  # a first start, then a restart on the same database file
            server.start()
            client = await connect(settings)  # no retry: refused while the frontend is not healthy
            assert (await client.count_workflows()).count == 0
            server.stop()
    finally:
        server.stop()
