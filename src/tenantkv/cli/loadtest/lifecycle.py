"""What the load test starts and stops (servers, clusters, probe processes) as context managers."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Started"]


class Started:
    """Started on entering a ``with`` block, stopped on leaving it (an error included).

    A subclass provides :meth:`start` (returning itself) and :meth:`stop`
    (idempotent).
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
