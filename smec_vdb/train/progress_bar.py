"""The progress bar ``train()`` shows by default in interactive use: one tqdm bar per stage on stderr.

As sentence-transformers does: a bar when stderr is a terminal, nothing otherwise (logs, CI,
notebooks that capture stderr), and a caller's own callback replaces it. A stage ended early by
held-out stopping finishes its bar at the epoch it stopped on (``9/9``), not at ``9/30``.

Example::

    with EpochBars() as bars:          # what train(..., progress=True) does
        comp = cls.fit(x, dims, config, None, bars, None)
"""

from __future__ import annotations

import sys
from typing import Any

from smec_vdb.train.progress import ProgressEvent


def wants_bar(progress: Any) -> bool:
    """``progress=None`` means "a bar if stderr is a terminal"; True/False force it on/off."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return progress is True


class EpochBars:
    """A :data:`ProgressCallback`: one tqdm bar per stage run, epochs as steps, loss and held-out score as postfix.

    A run starts when the stage changes or its epoch count starts again (SMEC tries the last stage
    from two inputs, and a labelled stage after an unsupervised warm start); the previous bar is
    then finished where that run ended.
    """

    def __init__(self) -> None:
        self.bar: Any = None
        self.stage: tuple[int, int] | None = None

    def __enter__(self) -> "EpochBars":
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.bar is None:
            return
        if self.bar.total != self.bar.n:
            self.bar.total = self.bar.n  # stopped early on the held-out score: that was the end
            self.bar.refresh()
        self.bar.close()
        self.bar = None

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm.auto import tqdm

        stage = (event.stage, event.stage_dim)
        if self.bar is None or stage != self.stage or event.epoch <= self.bar.n:
            self._finish()
            self.stage = stage
            self.bar = tqdm(total=event.max_epochs, desc=f"stage {event.stage + 1} → {event.stage_dim}d",
                            unit="epoch", file=sys.stderr, leave=True, dynamic_ncols=True)
        self.bar.set_postfix({"loss": f"{event.train_loss:.5f}", event.criterion: f"{event.score:.4f}"},
                             refresh=False)
        self.bar.update(event.epoch - self.bar.n)
