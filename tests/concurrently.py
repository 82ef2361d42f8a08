"""Run the same work in several threads released at the same moment, for race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def all_at_once(work: Callable[[], object], threads: int) -> list[BaseException]:
    """Run `work` in `threads` threads that start together; what they raised, if anything."""
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:
            failures.append(exc)

    running = [threading.Thread(target=run) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return failures
