"""A worker's preloaded launcher (a "zygote"): attempts start as forks of a process that imported the stages once.

A fresh ``python -m eoengine.platform.runner`` spends seconds importing the stages (Beam,
geopandas, rasterio, torch…) before a job does anything. A worker instead starts one launcher,
``python -m eoengine.platform.launcher FD``, which imports what every attempt imports before it
reports ready (:data:`PRELOAD`), torch once it is idle (:data:`IDLE_PRELOAD`), and
``os.fork()`` s one child per attempt when asked. The child gets what a fresh process
got: a session and process group of its own (a cancel is ``killpg`` of it), ``PR_SET_PDEATHSIG =
SIGKILL`` (it dies with the launcher, which dies the same way with its worker), stdin from
``/dev/null``, stdout and stderr appended to the job's log, the project folder as its working
directory and the attempt's environment; it then runs :func:`eoengine.platform.runner.main`.

The launcher starts no thread and opens no database, and preloads only modules whose import starts
no thread: what would not survive a fork (an engine's pooled connections, the progress thread,
torch's thread pools, pandas' and Lightning's threads) is made by the child. It talks
to the worker over a socket, one JSON object a line: the worker sends ``{"token", "job", "cwd",
"env", "log"}``; the launcher says ``{"ready"}`` once, then answers ``{"token", "pid"}`` once it forked and ``{"token",
"exit"}`` (a ``Popen.returncode``: negative for a signal) once the child ended. When the worker
closes the socket, the launcher kills what still runs and exits.

The worker side is :class:`Launcher`: its :class:`Attempt` objects answer ``poll``/``wait``
like a ``subprocess.Popen``. When the launcher dies, its attempts (killed by the kernel with
it) end as killed by SIGKILL, and the worker starts a new launcher for its next attempt.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
PRELOAD = ("eoengine.platform.runner", "sqlalchemy.dialects.postgresql.psycopg", "eoengine.jobs.run",
           "eoengine.config.load", "eoengine.tracking.store", "eoengine.platform.index", "eoengine.datasets.build")
"""What the launcher imports before it is ready: what every attempt imports (a dataset that is up to date included).
They start no thread but OpenBLAS's pool (numpy's), which OpenBLAS itself stops before a fork."""
IDLE_PRELOAD = ("torch",)
"""What it imports once idle (no attempt running, no request for :data:`IDLE_S`): torch, whose import starts no
thread (its pools start at first use, in the child). Not preloaded, as each starts threads at import that a fork
would cut off mid-work: pandas (and so geopandas, Beam's pipeline, MLflow) and Lightning; an attempt imports them."""
IDLE_S = 1.0
BAD_START = 125
"""A child's exit code when it could not be set up (its launcher died meanwhile, its log cannot be opened)."""


def set_death_signal(sig: int, parent: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux); exit at once if it already has.

    Args:
        sig: The signal this process gets.
        parent: The pid of the parent this process depends on.

    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        os._exit(BAD_START)
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(BAD_START)


def _send(sock: socket.socket, **message: Any) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _returncode(status: int) -> int:
    """A wait status as ``subprocess.Popen.returncode`` has it (``-N`` for signal N)."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _reseed() -> None:
    """Give the child random state of its own, as a fresh interpreter has (``random`` reseeds itself at fork)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _child(request: Mapping[str, Any], launcher: int, inherited: list[int]) -> int:
    """Set up a forked child as a fresh attempt process would be, then run the attempt; its exit code."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    set_death_signal(signal.SIGKILL, launcher)
    for fd in inherited:
        os.close(fd)
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.chdir(request["cwd"])
    except OSError as exc:
        print(f"attempt of job {request['job']}: {exc}", file=sys.stderr, flush=True)
        return BAD_START
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    _reseed()
    from eoengine.platform.runner import main

    sys.argv = [main.__module__, str(request["job"])]
    try:
        code = main([str(request["job"])])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a crash of the runner ends the process as it would a fresh one
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what the interpreter's exit runs: the fork skips the rest of its teardown
    return code


@dataclass
class _Serving:
    """The launcher's state: its socket, its SIGCHLD wake-up pipe, its children and what it has still to import."""

    sock: socket.socket
    wake: tuple[int, int]
    preload: list[str]
    children: dict[int, int] = field(default_factory=dict)
    buffer: bytes = b""
    busy_at: float = field(default_factory=time.monotonic)

    def timeout(self) -> float | None:
        """Seconds to wait for a request or a child's end before the next preload; None: no preload due."""
        if not self.preload or self.children:
            return None
        return max(0.0, self.busy_at + IDLE_S - time.monotonic())

    def fork(self, request: Mapping[str, Any]) -> None:
        launcher = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = BAD_START
            try:
                code = _child(request, launcher, [self.sock.fileno(), *self.wake])
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.children[pid] = request["token"]
        self.busy_at = time.monotonic()
        _send(self.sock, token=request["token"], pid=pid)

    def reap(self) -> None:
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            token = self.children.pop(pid, None)
            self.busy_at = time.monotonic()
            if token is not None:
                _send(self.sock, token=token, exit=_returncode(status))

    def read(self) -> bool:
        """Fork a child for each whole request received; False when the worker closed the socket."""
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.fork(json.loads(line))
        return True

    def preload_next(self) -> None:
        name = self.preload.pop(0)
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an attempt that needs it imports it itself, and reports why not
            print(f"launcher: {name} not preloaded ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)


def serve(fd: int, preload: tuple[str, ...] = PRELOAD, idle_preload: tuple[str, ...] = IDLE_PRELOAD) -> int:
    """The launcher's loop: import ``preload``, then fork an attempt per request and report its pid and exit.

    Between requests, while idle, it imports ``idle_preload`` one module at a time.

    Args:
        fd: The socket to the worker (inherited).
        preload: Modules to import before it reports ready.
        idle_preload: Modules to import, one at a time, while idle.

    Returns:
        The exit code (0: the worker closed the socket).

    """
    from eoengine.platform.runner import setup_logging
    from eoengine.runtime import tune_allocator

    tune_allocator()  # the children inherit it (it is set once per process)
    setup_logging()  # before the stages' imports, whose warnings it filters, as the runner does
    wake = os.pipe()
    os.set_blocking(wake[1], False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    state = _Serving(socket.socket(fileno=fd), wake, list(preload))
    while state.preload:
        state.preload_next()
    state.preload = list(idle_preload)
    _send(state.sock, ready=os.getpid())
    while True:
        ready, _, _ = select.select([state.sock.fileno(), wake[0]], [], [], state.timeout())
        if wake[0] in ready:
            os.read(wake[0], 4096)
        state.reap()
        if state.sock.fileno() in ready and not state.read():
            break
        if not ready and state.timeout() == 0.0:
            state.preload_next()
    for pid in state.children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return 0


class LauncherDied(Exception):
    """The launcher is gone (or never answered): its attempts are dead, and a new one is needed."""


@dataclass
class Attempt:
    """An attempt forked by a :class:`Launcher`, polled like a ``subprocess.Popen``.

    Attributes:
        launcher: The launcher that forked it.
        token: Its number in the launcher's messages.
        pid: Its process id (and process group), once the launcher reported it.
        returncode: Its exit code once it ended (``-N``: killed by signal N).

    """

    launcher: Launcher
    token: int
    pid: int | None = None
    returncode: int | None = None
    _pending: int | None = None

    def poll(self) -> int | None:
        """Its exit code, or None while it runs (reads what the launcher reported, without waiting)."""
        if self.returncode is None:
            self.launcher.pump(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait until it ended.

        Args:
            timeout: Seconds at most (None: no limit).

        Returns:
            Its exit code.

        Raises:
            subprocess.TimeoutExpired: It still runs after ``timeout`` seconds.

        """
        end = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"job attempt {self.token}", timeout or 0.0)
            self.launcher.pump(left)
        return self.returncode

    def signal_group(self, sig: int) -> None:
        """Signal its process group (once its pid is known: a signal sent before is kept until then).

        Args:
            sig: The signal.

        """
        if self.pid is None:
            self._pending = signal.SIGKILL if signal.SIGKILL in (self._pending, sig) else sig
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _started(self, pid: int) -> None:
        self.pid = pid
        if self._pending is not None:
            self.signal_group(self._pending)


class Launcher:
    """The worker's side of a launcher process (see the module docs): start it, ask for attempts, read its reports.

    Args:
        env: The environment of the launcher process (its children get each attempt's own).

    """

    def __init__(self, env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", "eoengine.platform.launcher", str(theirs.fileno())]
        parent = os.getpid()
        self.proc = subprocess.Popen(cmd, env=dict(env), stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                     start_new_session=True,  # a terminal's Ctrl-C is the worker's to handle
                                     preexec_fn=lambda: set_death_signal(signal.SIGKILL, parent))
        theirs.close()
        self.sock, self.attempts, self._buffer, self._tokens = ours, dict[int, Attempt](), b"", 0
        self.dead = self.ready = False

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the launcher has set itself up (the runner imported), at most ``timeout`` seconds.

        Args:
            timeout: Seconds.

        Returns:
            Whether it is ready (when not, it is stopped).

        """
        end = time.monotonic() + timeout
        while not self.ready and not self.dead and (left := end - time.monotonic()) > 0:
            self.pump(left)
        if not self.ready:
            self.close(0)
        return self.ready

    @property
    def alive(self) -> bool:
        """Whether it can still start attempts."""
        return not self.dead and self.proc.poll() is None

    def launch(self, job_id: int, cwd: Path, env: Mapping[str, str], log: Path) -> Attempt:
        """Ask for an attempt process (its pid comes with a later :meth:`pump`).

        Args:
            job_id: The job the attempt runs.
            cwd: Its working directory.
            env: Its whole environment.
            log: The file its output is appended to.

        Returns:
            The attempt.

        Raises:
            LauncherDied: The launcher is gone.

        """
        if not self.alive:
            raise LauncherDied(f"the launcher exited with code {self.proc.poll()}")
        self._tokens += 1
        attempt = Attempt(self, self._tokens)
        self.attempts[attempt.token] = attempt
        try:
            _send(self.sock, token=attempt.token, job=job_id, cwd=str(cwd), env=dict(env), log=str(log))
        except OSError as exc:
            self._died()
            raise LauncherDied(f"the launcher is gone ({exc})") from exc
        return attempt

    def pump(self, timeout: float | None) -> None:
        """Read the launcher's reports, waiting up to ``timeout`` seconds for one (None: until one comes).

        Args:
            timeout: Seconds to wait for a report.

        """
        if self.dead:
            return
        ready, _, _ = select.select([self.sock], [], [], timeout)
        while ready:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._died()
                return
            self._buffer += data
            ready, _, _ = select.select([self.sock], [], [], 0)
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "ready" in message:
                self.ready = True
                continue
            attempt = self.attempts.get(message["token"])
            if attempt is None:
                continue
            if "pid" in message:
                attempt._started(message["pid"])
            else:
                attempt.returncode = message["exit"]
                del self.attempts[attempt.token]

    def _died(self) -> None:
        """The launcher is gone: the kernel killed its children with it; their groups' leftovers are killed too."""
        self.dead = True
        self.sock.close()
        for attempt in self.attempts.values():
            attempt.signal_group(signal.SIGKILL)
            attempt.returncode = -signal.SIGKILL
        self.attempts.clear()
        self._stop(5.0)

    def _stop(self, grace_s: float) -> None:
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:  # its socket is closed, yet it lingers
            self.proc.kill()
            self.proc.wait()

    def close(self, grace_s: float = 5.0) -> None:
        """Stop the launcher, which kills the attempts still running: close its socket, SIGKILL it if it lingers.

        Args:
            grace_s: Seconds it gets to exit.

        """
        if not self.dead:
            self.sock.shutdown(socket.SHUT_WR)  # it reads the end of its requests, kills its children and exits
            self._stop(grace_s)
            self._died()


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
