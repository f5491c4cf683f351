"""A writer process for the store tests: appends events and prints each id once committed.

    python tests/store_writer.py DB_PATH TAG [COUNT]

Prints ``TAG-<n>`` (the event's correlation id) on its own line, flushed, after each event is
committed. With no COUNT it writes until killed (the kill -9 test).
"""

from __future__ import annotations

import itertools
import sys

from deploytui.model import TimelineEvent
from deploytui.store import Store


def main(argv: list[str]) -> int:
    path, tag = argv[0], argv[1]
    count = int(argv[2]) if len(argv) > 2 else None
    store = Store(path)
    numbers = range(count) if count is not None else itertools.count()
    for n in numbers:
        cid = f"{tag}-{n}"
        store.append_event(TimelineEvent(kind="note", summary=f"event {cid}", correlation_id=cid,
                                         actor=tag))
        sys.stdout.write(cid + "\n")
        sys.stdout.flush()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
