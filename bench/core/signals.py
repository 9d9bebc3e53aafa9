"""SIGTERM handled like a preemption notice: stop at a safe point, keep what is done, exit 143.

``kill``, container runtimes and schedulers other than Slurm send SIGTERM. While a trainer runs (the
:meth:`Termination.training` scope) the signal only sets a flag, which the trainer polls after every
step: it finishes the step, writes a checkpoint of it and raises ``Preempted``. Anywhere else the
signal raises :class:`Terminated` at once: every result is written atomically, so nothing complete is
lost and nothing half-written is left. Either way the command prints one line and exits 143.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: the exit status of a process ended by SIGTERM (128 + 15), as shells report it
EXIT_TERMINATED = 128 + signal.SIGTERM


class Preempted(RuntimeError):
    """A trainer's ``should_stop`` asked to stop (SIGTERM, Slurm's preemption notice): a checkpoint of
    the last finished step was written first."""

    def __init__(self, step: int):
        super().__init__(f"stopped after step {step}; checkpoint written")
        self.step = step


class Terminated(BaseException):
    """SIGTERM outside a training loop (a BaseException, like KeyboardInterrupt: no ``except Exception``
    on the way may swallow it)."""


class Termination:
    """The SIGTERM handler of one command; ``should_stop`` is what a trainer polls."""

    def __init__(self) -> None:
        self.requested = False
        self._training = 0
        self._previous = None

    def install(self) -> Termination:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True
        if not self._training:
            raise Terminated()

    def should_stop(self) -> bool:
        return self.requested

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """While inside, SIGTERM waits for the trainer's next step boundary; on leaving, a request that
        came in too late for the trainer (its last step) stops the command here."""
        self._training += 1
        try:
            yield
        finally:
            self._training -= 1
        if self.requested:
            raise Terminated()


__all__ = ["EXIT_TERMINATED", "Preempted", "Terminated", "Termination"]
