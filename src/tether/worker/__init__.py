"""The worker process: decision logging and drift detection beside the HTTP server.

A server answers decisions on one event loop. Committing decision rows and running the
drift detectors on each of them cost more CPU than the decision itself, and threads of
the same process take it from the event loop (they share the GIL). With
``background_work = "process"`` (``tether serve``'s default) the server hands each
decision row to a worker process over a pipe and does nothing else with it:

* :class:`WorkerLink` (server side) is a :class:`~tether.store.sink.DecisionSink` like
  :class:`~tether.store.decision_log.DecisionLog`: ``record`` appends the encoded row to
  a queue (no I/O; a row that cannot be encoded goes as its error row); a thread writes
  what queued up to the worker's stdin every few milliseconds; ``flush`` returns once the
  worker committed everything recorded before it; ``close`` drains and waits. Its
  ``written``, ``lost`` and ``healthy`` are the worker's decision log's, from the
  worker's ``health`` replies (``tether.worker.protocol``).
* the worker (``python -m tether.worker``) builds only what that needs on the same store
  (:func:`tether.composition.build_core`, a decision log, the drift engine): one loop
  reads every row that arrived, commits a batch per flush interval (``DecisionLog.write``)
  and runs drift detection on it (``DriftEngine.work``, which also reads newly ingested
  events); each identity's drift record (``context.tether.behaviour``) goes back over its
  stdout, where the server puts it into the next decision's context.

Durability: a clean stop drains the queue, the pipe and the worker's log (no loss). A
server killed with SIGKILL closes the pipe; the worker commits what it read and exits,
so the loss is at most what had not yet left the server (a few milliseconds). The worker
ignores SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group) and
stops only when its stdin closes. If the worker dies, the server starts another one and
resends the batch that failed; rows the dead worker read but had not committed are lost
(at most its flush interval).
"""

from tether.worker.link import WorkerLink

__all__ = ["WorkerLink"]
