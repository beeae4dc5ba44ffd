"""Where batch instances run: a local pool of processes, or Ray. Both answer the same way.

The runner owns the slots: it starts an item only when a slot is free, so nothing is queued
inside an executor and cancelling what has not started is just not starting it. Executors only
carry `WorkItem`s out and `Event`/`Done` messages back; the parent writes every shared file.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from treefix.evals.worker import FORWARDED, WorkItem, WorkResult, error_result, solve
from treefix.tools.proctree import kill_tree


@dataclass
class Event:
    slot: int
    instance_id: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Done:
    slot: int
    instance_id: str
    result: WorkResult


Message = Event | Done
# Imported once in the fork server, not in every instance's process.
PRELOAD = [
    "treefix.evals.worker",
    "treefix.evals.environment",
    "treefix.agent.run",
    "treefix.agent.policies.llm",
    "langgraph.checkpoint.sqlite",
]


class Executor(Protocol):
    def start(self, slot: int, item: WorkItem) -> None: ...
    def poll(self, timeout: float) -> list[Message]: ...
    def running(self) -> int: ...
    def kill_all(self) -> None: ...
    def close(self) -> None: ...


class ExecutorError(RuntimeError):
    """The executor cannot start (Ray missing, cluster unreachable)."""


def make_executor(kind: str, workers: int, address: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(workers, address)
    raise ExecutorError(f"unknown executor {kind!r}: use local or ray")


# --- local: one process per instance, forked from a preloaded fork server ----------------------


def _detach_from_terminal() -> None:
    # The first Ctrl-C only stops new starts: running instances must not see it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: die with the parent, so a killed runner leaves no orphan writing into its output
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _local_main(item: WorkItem, conn: Connection) -> None:
    _detach_from_terminal()
    lock = threading.Lock()  # the search emits from several threads

    def emit(kind: str, data: dict[str, Any]) -> None:
        if kind in FORWARDED:
            with lock:
                conn.send(("event", kind, _small(data)))

    result = solve(item, emit)
    with lock:
        conn.send(("done", result))
    conn.close()


@dataclass
class _Proc:
    slot: int
    item: WorkItem
    process: Any
    conn: Connection
    result: WorkResult | None = None


class LocalExecutor:
    """A process per instance: a crash or leak in one instance never reaches the next."""

    def __init__(self) -> None:
        # forkserver: fast starts (modules imported once) without forking the parent's threads.
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        from multiprocessing import forkserver

        forkserver.ensure_running()
        self._procs: dict[str, _Proc] = {}

    def start(self, slot: int, item: WorkItem) -> None:
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_local_main, args=(item, child), name=f"treefix-{item.instance_id}")
        proc.start()
        child.close()
        self._procs[item.instance_id] = _Proc(slot, item, proc, parent)

    def running(self) -> int:
        return len(self._procs)

    def poll(self, timeout: float) -> list[Message]:
        if not self._procs:
            return []
        by_conn = {p.conn: p for p in self._procs.values()}
        out: list[Message] = []
        for conn in wait(list(by_conn), timeout):
            p = by_conn[conn]
            try:
                while True:
                    msg = conn.recv()
                    if msg[0] == "event":
                        out.append(Event(p.slot, p.item.instance_id, msg[1], msg[2]))
                    else:
                        p.result = msg[1]
                    if not conn.poll():
                        break
            except (EOFError, OSError):  # the worker is gone; everything it sent has been read
                out.append(self._finish(p))
        return out

    def _finish(self, p: _Proc) -> Done:
        p.process.join(timeout=10)
        p.conn.close()
        del self._procs[p.item.instance_id]
        result = p.result or error_result(
            p.item.instance_id, f"WorkerDied: the worker process exited with code {p.process.exitcode}"
        )
        return Done(p.slot, p.item.instance_id, result)

    def kill_all(self) -> None:
        for p in list(self._procs.values()):
            kill_tree(p.process.pid)  # the worker and its test commands, which run in their own sessions
        for p in list(self._procs.values()):
            p.process.join(timeout=5)
            p.conn.close()
        self._procs.clear()

    def close(self) -> None:
        self.kill_all()


# --- Ray: one task per instance; events through a queue actor ---------------------------------


def _ray_main(item: WorkItem, queue: Any) -> WorkResult:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def emit(kind: str, data: dict[str, Any]) -> None:
        if kind in FORWARDED:
            try:
                queue.put_nowait((item.instance_id, kind, _small(data)))
            except Exception:  # the display is best effort; the result is what counts
                pass

    return solve(item, emit)


class RayExecutor:
    """Runs on the cluster at `address`, or on a local Ray started here (or already running).

    Workers must see the same filesystem as the runner: run directories and the global ledger
    are paths under the output directory."""

    def __init__(self, workers: int, address: str | None = None):
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install 'treefix[ray]'") from None
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": max(1, workers)}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, **kw)
            except Exception as e:
                raise ExecutorError(f"cannot start or reach Ray ({address or 'local'}): {e}") from None
            self._owns = True
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_main)
        self._refs: dict[Any, tuple[int, str]] = {}
        self._slots: dict[str, int] = {}

    def start(self, slot: int, item: WorkItem) -> None:
        ref = self._remote.remote(item, self._queue)
        self._refs[ref] = (slot, item.instance_id)
        self._slots[item.instance_id] = slot

    def running(self) -> int:
        return len(self._refs)

    def poll(self, timeout: float) -> list[Message]:
        out: list[Message] = []
        if self._refs:
            ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=timeout)
        else:
            ready = []
        # Events first, so an instance's last step is shown before its result.
        for iid, kind, data in self._drain():
            if iid in self._slots:
                out.append(Event(self._slots[iid], iid, kind, data))
        for ref in ready:
            slot, iid = self._refs.pop(ref)
            self._slots.pop(iid, None)
            try:
                result = self._ray.get(ref)
            except Exception as e:
                result = error_result(
                    iid, f"RayTaskError: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                )
            out.append(Done(slot, iid, result))
        return out

    def _drain(self) -> list[tuple[str, str, dict[str, Any]]]:
        try:
            return self._queue.get_nowait_batch(self._queue.qsize())
        except Exception:
            return []

    def kill_all(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._slots.clear()

    def close(self) -> None:
        self.kill_all()
        try:
            self._queue.shutdown()
        except Exception:
            pass
        if self._owns:
            self._ray.shutdown()


def _small(data: dict[str, Any]) -> dict[str, Any]:
    """Only short scalars cross the process boundary for display."""
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, int | float | bool | None) or (isinstance(v, str) and len(v) <= 200)
    }
