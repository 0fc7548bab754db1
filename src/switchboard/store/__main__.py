"""`python -m switchboard.store upgrade [URL]` or `python -m switchboard.store regenerate`."""

from __future__ import annotations

import asyncio
import os
import sys

from switchboard.store.migrations_runner import migrate, regenerate_initial


def main(argv: list[str]) -> int:
    if argv[:1] == ["regenerate"]:
        print(asyncio.run(regenerate_initial()))
        return 0
    if argv[:1] == ["upgrade"]:
        url = argv[1] if len(argv) > 1 else os.environ.get("DATABASE_URL")
        if not url:
            print("usage: python -m switchboard.store upgrade URL (or set DATABASE_URL)", file=sys.stderr)
            return 2
        asyncio.run(migrate(url))
        return 0
    print(
        "usage: python -m switchboard.store upgrade [URL] | regenerate\n"
        "  upgrade     migrate the database to the newest revision\n"
        "  regenerate  rewrite the initial revision from the table models (while it is the only one)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
