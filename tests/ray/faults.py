"""Faults injected from inside Ray workers: each kills its own process (SIGKILL) once, as a crash would.

The marker file makes it once per test: the restarted actor, or the retried task, finds it and goes on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from st_plugins.ray import ChromaDatasink, EmbedBatch


def _die_once(marker: str) -> None:
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


class EmbedDiesOnce(EmbedBatch):
    """An embedding actor whose process is killed on its third batch (mid-run, after two batches went out)."""

    def __init__(self, marker: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.marker, self.calls = marker, 0

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        if self.calls == 3:
            _die_once(self.marker)
        return super().__call__(batch)


class SinkDiesOnce(ChromaDatasink):
    """A Chroma sink whose write task is killed after it wrote the first chunk of its rows (Ray retries it)."""

    def __init__(self, marker: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = marker

    def _target(self) -> Any:
        write = super()._target()

        def write_then_die(rows: Any) -> None:
            write(rows)
            _die_once(self.marker)

        return write_then_die
