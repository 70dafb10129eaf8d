"""A local Amazon Redshift stand-in for strata's tests: the real PostgreSQL at 127.0.0.1:5432
behind a wire-protocol front (`wire.py`) and a Redshift Data API (`data_api.py`, served with
the control API by `control.py`), in one process so that injected faults and the event log are
shared. `start.sh` starts it, with moto's S3 beside it as a process of its own.

Ports: STANDIN_WIRE_PORT (5439), STANDIN_DATA_API_PORT (4439); S3 at STANDIN_S3_PORT (4566).
"""

import asyncio
import hashlib
import logging
import os
import pathlib
import threading

import control
import shared
import wire


def version() -> str:
    """Names this code, so start.sh can tell a stand-in started from older files."""
    here = pathlib.Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(here.glob("*.py")) + [here / "requirements.txt"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


async def main() -> None:
    wire_port = int(os.environ.get("STANDIN_WIRE_PORT", "5439"))
    api_port = int(os.environ.get("STANDIN_DATA_API_PORT", "4439"))
    state = shared.Shared(shared.Faults(), shared.Events(), shared.Settings())
    server = await wire.serve(wire_port, state)
    http = control.Server(api_port, state, wire_port, version())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    logging.getLogger("standin").info("wire front on %d, Data API on %d", wire_port, api_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main())
