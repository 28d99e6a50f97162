"""Who holds a run's lease, and keeping it: a run's owner (``host:pid``), whether that owner
is a process of this host that is gone, and the heartbeat thread that refreshes an open run's
lease.

This module writes nothing: the heartbeat calls :meth:`RunLedger.heartbeat
<etl_express.store.ledger.RunLedger.heartbeat>`, and the run ledger (:mod:`.ledger`, the
owner of ``etl_express.runs``) decides with :func:`owner_is_dead` which runs it takes over.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .runlog import RunLog


class _Beats(Protocol):
    """What the heartbeat refreshes a lease through (:class:`~.ledger.RunLedger`)."""

    def heartbeat(self, run_id: str) -> bool: ...


class Heartbeat:
    """A daemon thread refreshing a run's lease every ``interval`` seconds.

    ``lost`` is set when the run is no longer ``running`` in the store (another process
    took it over); the batch loop then stops before its next commit.
    """

    def __init__(self, ledger: _Beats, run_id: str, interval: float, log: RunLog):
        self.ledger, self.run_id, self.interval, self.log = ledger, run_id, interval, log
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"etl-heartbeat-{run_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.ledger.heartbeat(self.run_id):
                    self.lost.set()
                    return
            except Exception as exc:  # the database may be down for a moment: keep trying
                self.log.warning("heartbeat failed: {}", type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def owner_id() -> str:
    """This process as a run's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """``True`` when ``owner`` (``host:pid``) is a process on this host that no longer runs.

    Owners on other hosts, and unparsable owners, are never declared dead here: their
    lease (heartbeat age) decides. A zombie (killed, not yet reaped) counts as dead.
    """
    if not owner or ":" not in owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


__all__ = ["Heartbeat", "owner_id", "owner_is_dead"]
