"""A local Amazon Athena stand-in for strata's tests: an Athena API front (`control.py`,
`athena_api.py`) over a real Trino, whose catalogs `awsdatacatalog` (Hive) and `iceberg` keep
their tables in Glue and their data in S3, both served by moto (`moto_glue.py`). `start.sh`
starts all three; this file is the front.

Ports: STANDIN_ATHENA_PORT (4440) for the front; Trino at STANDIN_TRINO_PORT (8090), moto at
STANDIN_MOTO_PORT (4567).
"""

import hashlib
import logging
import os
import pathlib

import control
import shared


def version() -> str:
    """Names this code, so start.sh can tell a stand-in started from older files: the Python
    files, the requirements and Trino's configuration, in byte order of their paths."""
    here = pathlib.Path(__file__).parent
    files = sorted(here.glob("*.py")) + [here / "requirements.txt"]
    files += sorted((p for p in (here / "trino").rglob("*") if p.is_file()), key=lambda p: str(p.relative_to(here)))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    port = int(os.environ.get("STANDIN_ATHENA_PORT", "4440"))
    state = shared.Shared(shared.Faults(), shared.Events())
    server = control.Server(port, state, version())
    logging.getLogger("standin").info("Athena front on %d", port)
    server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    main()
