"""Cancellation by signal: SIGTERM/SIGINT become a :class:`Cancelled` exception in long work."""

from __future__ import annotations

import signal
import threading

__all__ = ["Cancelled", "cancel_on_signals"]


class Cancelled(Exception):
    """Raised inside long work (a pipeline run, a sweep) when SIGTERM/SIGINT arrives."""


class cancel_on_signals:  # noqa: N801 - used as a context manager, like contextlib's helpers
    """Turn SIGTERM/SIGINT into :class:`Cancelled` inside the block (main thread only)."""

    def __enter__(self):
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.old[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise Cancelled(f"received {signal.Signals(signum).name}")

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False
