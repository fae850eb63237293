"""Revocation latency across processes: how long after a sign-out answers does any other worker or
instance still let the ended session through forward-auth?

    .venv/bin/python benchmarks/revocation.py                  # 30 sign-outs per setup
    .venv/bin/python benchmarks/revocation.py --trials 100 --postgres postgresql://postgres@127.0.0.1/test

Two setups, each with `PASSGATE_REVOCATION_WINDOW=300` so the backstop never answers for the log:
`passgate serve --workers 2` on SQLite, and two instances sharing one PostgreSQL database (a scratch
database on the server of `--postgres`; skipped with `--postgres ''`). Each trial signs in, lets every
gate remember the session, signs out, then asks every gate on fresh connections (8 at a time per
server) until none has let the cookie through for 150 ms. It prints the median, p90 and worst lag.
The documented guarantee is 50 ms. Not part of the test run (the tests run a shorter version).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import machine, scratch_postgres  # also puts tests/ on the path

from revoking import two_instances_on_postgresql, two_workers_on_sqlite


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()
    print(machine())
    sqlite = two_workers_on_sqlite(Path(tempfile.mkdtemp()), options.trials)
    print(f"SQLite, --workers 2:        {sqlite.summary()}")
    if options.postgres:
        with scratch_postgres(options.postgres) as database:
            postgres = two_instances_on_postgresql(Path(tempfile.mkdtemp()), database, options.trials)
        print(f"PostgreSQL, two instances: {postgres.summary()}")


if __name__ == "__main__":
    main()
