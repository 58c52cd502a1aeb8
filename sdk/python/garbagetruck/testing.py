"""Run the real broker for tests.

``with broker(min_lease=0.05) as b:`` starts the ``garbagetruck`` daemon on
ephemeral loopback ports (``--port 0 --events-port 0``, unless ``port=`` /
``events_port=`` are given), waits for its ready line, and stops it on exit.
Settings are the daemon's flags with ``_`` for ``-`` (``max_leases_per_service=3``
becomes ``--max-leases-per-service 3``); timedeltas are given in seconds.

The binary is ``binary=``, else ``$GT_BROKER_BIN``, else ``garbagetruck`` on
``PATH``, else a build of the source tree this package sits in
(``<repo>/build/broker/garbagetruck``, then ``<repo>/build-*/...``).

For pytest, list ``pytest_plugins = ["garbagetruck.testing"]`` in the
top-level conftest, or import the fixtures into a ``conftest.py``::

    from garbagetruck.testing import broker_fixture, broker_factory  # noqa: F401

The fixture is *named* ``broker`` (the module attribute ``broker`` is the
context manager).  It runs a broker with ``DEFAULT_TEST_SETTINGS``; override
per test with ``@pytest.mark.parametrize("broker", [{...}], indirect=True)``.
``broker_factory(**settings)`` starts more, all stopped after the test.

CURVE: ``with curve_broker() as b:`` runs a broker with ``--curve-cert`` and
``--curve-clients`` from a :class:`CurveKeyring` (certificates in a
temporary directory), ``b.curve``.  ``b.curve.add_client("a", service="svc")``
makes a client certificate and trusts it; ``b.curve.client_args(cert)`` are
the ``server_key=`` / ``client_cert=`` arguments of a client using it;
``b.curve.remove_client(cert)`` stops trusting it (the broker notices within
1 s, also on open connections).  The fixture ``curve_broker`` does the same
for pytest.  Add clients before the broker starts, or connect a client added
while it runs once the broker has read the directory again (within 1 s):
libzmq does not retry a refused handshake (GTLP.md §13).
"""

from __future__ import annotations

import errno
import glob
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Union

__all__ = [
    "BrokerProcess",
    "BrokerNotFound",
    "ClientCertificate",
    "CurveKeyring",
    "broker",
    "curve_broker",
    "find_broker_binary",
    "find_gtctl_binary",
    "free_port",
    "silent_endpoint",
    "DEFAULT_TEST_SETTINGS",
]

#: Settings of the ``broker`` fixture: short minimum lease so tests can use
#: TTLs of a fraction of a second.
DEFAULT_TEST_SETTINGS: Dict[str, Any] = {"min_lease": 0.01}

_READY = re.compile(r"garbagetruck ready requests=(\S+) events=(\S+)(?: metrics=(\S+))?")
_PORT = re.compile(r":(\d+)$")


class BrokerNotFound(RuntimeError):
    """No broker binary was found (set GT_BROKER_BIN)."""


# --------------------------------------------------------------------------
# CURVE certificates


@dataclass
class ClientCertificate:
    """A client's CURVE certificate pair made by :meth:`CurveKeyring.add_client`.

    ``secret_file`` is what a client passes as ``client_cert=``;
    ``public_file`` is the copy the broker trusts, in the keyring's clients
    directory (``None`` once :meth:`CurveKeyring.remove_client` took it away)."""

    name: str
    public_key: str
    secret_file: str
    metadata: Dict[str, str]
    public_file: Optional[str] = None


def _zpl_value(name: str, value: str) -> str:
    # A quoted ZPL value (as CZMQ's zcert_save writes them) ends at the next
    # quote and a line at its newline: neither may hide in a value.
    if any(c in value for c in '"\n\r'):
        raise ValueError(f"certificate metadata {name}: quotes and line breaks are not allowed: {value!r}")
    return f'"{value}"'


def _write_public_certificate(path: Path, public_key: str, metadata: Dict[str, str], mode: int) -> None:
    """Write a public certificate in CZMQ's ZPL format, metadata included.

    pyzmq's create_certificates writes the metadata into the secret file
    only, and the broker reads a principal's service and role from the
    public one, so the public file is written here.  It appears at once
    (written under a dot name, which the broker skips, then renamed), so
    the broker never reads half of it."""
    lines = ["#   ZeroMQ CURVE Public Certificate (garbagetruck.testing)", "metadata"]
    lines += [f"    {name} = {_zpl_value(name, value)}" for name, value in metadata.items()]
    lines += ["curve", f'    public-key = "{public_key}"', ""]
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    os.chmod(partial, mode)  # whatever the umask
    os.replace(partial, path)


class CurveKeyring:
    """The certificates of a CURVE broker, in a temporary directory
    (``directory``, removed by :meth:`close`)::

        <directory>/server/server.key_secret   the broker's --curve-cert
        <directory>/clients/                    its --curve-clients: one public
                                                certificate per trusted client
        <directory>/keys/NAME.key_secret        each client's secret certificate

    The certificates are made with pyzmq's ``zmq.auth.create_certificates``
    (metadata ``service``, ``role``, ...).  ``server_key`` is the broker's
    Z85 public key (a client's ``server_key=``)."""

    def __init__(self, directory: Optional[str] = None) -> None:
        import zmq.auth  # here: garbagetruck.testing stays importable without it

        self._zmq_auth = zmq.auth
        self._owned = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="gt-curve-"))
        self.server_dir = self.directory / "server"
        self.clients_dir = self.directory / "clients"
        self.keys_dir = self.directory / "keys"
        for folder in (self.server_dir, self.clients_dir, self.keys_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        public, secret = zmq.auth.create_certificates(str(self.server_dir), "server")
        os.chmod(secret, 0o600)
        #: The broker's secret certificate file (``--curve-cert``).
        self.server_secret_file = secret
        #: The broker's public certificate file (also usable as ``server_key=``).
        self.server_public_file = public
        #: The broker's Z85 public key.
        self.server_key = zmq.auth.load_certificate(public)[0].decode("ascii")
        self.clients: Dict[str, ClientCertificate] = {}

    def __enter__(self) -> "CurveKeyring":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the directory (if this keyring made it)."""
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def broker_settings(self) -> Dict[str, str]:
        """The daemon's settings for this keyring: ``curve_cert``, ``curve_clients``."""
        return {"curve_cert": self.server_secret_file, "curve_clients": str(self.clients_dir)}

    def make_client(
        self, name: str, service: Optional[str] = None, role: Optional[str] = "service", **metadata: str
    ) -> ClientCertificate:
        """A client certificate pair the broker does not trust (yet: see
        :meth:`trust`).  ``service`` and ``role`` become its metadata, as
        does every other keyword with ``_`` for ``-``
        (``callback_allow="http://..."`` is ``callback-allow``)."""
        if name in self.clients or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"client name {name!r}: taken, or not a plain file name")
        entries: Dict[str, str] = {}
        if service is not None:
            entries["service"] = service
        if role is not None:
            entries["role"] = role
        entries.update({key.replace("_", "-"): str(value) for key, value in metadata.items()})
        for key, value in entries.items():
            _zpl_value(key, value)
        _public, secret = self._zmq_auth.create_certificates(str(self.keys_dir), name, metadata=entries)
        os.chmod(secret, 0o600)
        public_key = self._zmq_auth.load_certificate(secret)[0].decode("ascii")
        cert = ClientCertificate(name=name, public_key=public_key, secret_file=secret, metadata=entries)
        self.clients[name] = cert
        return cert

    def trust(self, cert: ClientCertificate) -> ClientCertificate:
        """Put the client's public certificate into the clients directory
        (the broker trusts it within 1 s)."""
        path = self.clients_dir / cert.name
        # The broker refuses a callback-secret that group or others may read.
        mode = 0o600 if "callback-secret" in cert.metadata else 0o644
        _write_public_certificate(path, cert.public_key, cert.metadata, mode)
        cert.public_file = str(path)
        return cert

    def add_client(
        self, name: str, service: Optional[str] = None, role: Optional[str] = "service", **metadata: str
    ) -> ClientCertificate:
        """:meth:`make_client`, then :meth:`trust`: a client the broker trusts."""
        return self.trust(self.make_client(name, service, role, **metadata))

    def remove_client(self, cert: Union[ClientCertificate, str]) -> None:
        """Delete the client's public certificate from the clients directory:
        the broker stops trusting it within 1 s, on open connections too.
        Its secret file stays, so a client can still try to use it."""
        if isinstance(cert, str):
            cert = self.clients[cert]
        if cert.public_file is not None:
            os.unlink(cert.public_file)
            cert.public_file = None

    def client_args(self, cert: ClientCertificate) -> Dict[str, str]:
        """``server_key`` and ``client_cert`` for a Client, AsyncClient or Subscriber."""
        return {"server_key": self.server_key, "client_cert": cert.secret_file}


def _repo_root() -> Optional[Path]:
    here = Path(__file__).resolve()
    # <repo>/sdk/python/garbagetruck/testing.py when run from the source tree
    if len(here.parents) > 3 and (here.parents[3] / "proto-spec").is_dir():
        return here.parents[3]
    return None


def _find(env: str, name: str, relative: str) -> Optional[str]:
    path = os.environ.get(env)
    if path:
        return path
    found = shutil.which(name)
    if found:
        return found
    root = _repo_root()
    if root is None:
        return None
    candidates = [root / "build" / relative]
    others = sorted(glob.glob(str(root / "build-*" / relative)), key=os.path.getmtime, reverse=True)
    candidates += [Path(p) for p in others]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_broker_binary() -> Optional[str]:
    """$GT_BROKER_BIN, ``garbagetruck`` on PATH, or a build in the source tree."""
    return _find("GT_BROKER_BIN", "garbagetruck", "broker/garbagetruck")


def find_gtctl_binary() -> Optional[str]:
    """$GT_GTCTL_BIN, ``gtctl`` on PATH, or a build in the source tree."""
    return _find("GT_GTCTL_BIN", "gtctl", "sdk/c/gtctl")


def _flag_value(value: Any) -> str:
    if isinstance(value, timedelta):
        return repr(value.total_seconds())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BrokerProcess:
    """A running broker daemon: ``endpoint`` (requests) and ``events_endpoint``;
    ``metrics_url`` when its ready line names one (``metrics_port="auto"``), else "".
    ``env``: the daemon's environment (default: this process's)."""

    def __init__(
        self,
        binary: str,
        settings: Dict[str, Any],
        startup_timeout: float,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.binary = binary
        self.settings = dict(settings)
        #: The certificates of a CURVE broker (:func:`curve_broker`), else None.
        self.curve: Optional[CurveKeyring] = None
        self.startup_timeout = startup_timeout
        self.env = dict(env) if env is not None else None
        self.endpoint = ""
        self.events_endpoint = ""
        self.metrics_url = ""
        self.port = int(self.settings.pop("port", 0))
        self.events_port = int(self.settings.pop("events_port", 0))
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.returncode: Optional[int] = None
        self._stderr: Optional[IO[bytes]] = None

    def _command(self, port: int, events_port: int) -> List[str]:
        command = [self.binary, "--host", "127.0.0.1", "--port", str(port), "--events-port", str(events_port)]
        for key, value in self.settings.items():
            command += ["--" + key.replace("_", "-"), _flag_value(value)]
        return command

    def start(self) -> "BrokerProcess":
        """Start (or, after :meth:`stop`, restart on the same ports)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the broker is already running")
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self._command(self.port, self.events_port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self.env,
        )
        lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"broker not ready within {self.startup_timeout} s{self._stderr_tail()}")
            if line is None:
                self.stop()
                raise RuntimeError(f"broker exited before it was ready (code {self.returncode}){self._stderr_tail()}")
            match = _READY.search(line.decode("utf-8", "replace"))
            if match:
                break
        self.endpoint, self.events_endpoint = match.group(1), match.group(2)
        self.metrics_url = match.group(3) or ""
        self.port = int(_PORT.search(self.endpoint).group(1))  # type: ignore[union-attr]
        self.events_port = int(_PORT.search(self.events_endpoint).group(1))  # type: ignore[union-attr]
        return self

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait up to ``timeout``, then SIGKILL.  Returns the exit code."""
        process = self.process
        if process is None:
            return self.returncode
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode
        if process.stdout is not None:
            process.stdout.close()
        self.process = None
        return self.returncode

    def restart(self, bind_timeout: float = 10.0) -> "BrokerProcess":
        """Stop and start again on the same ports (state is lost with the memory store).

        The ports are those of the first start (the kernel's choice with
        ``port=0``), bound again at once; a start that cannot bind them yet is
        retried for up to ``bind_timeout`` s.  To keep clients without a broker
        for a while, use :meth:`outage`: a port merely left free may be taken
        by any other process meanwhile."""
        self.stop()
        return self._start_on_same_ports(bind_timeout)

    @contextmanager
    def outage(self, bind_timeout: float = 10.0) -> Iterator["BrokerProcess"]:
        """Stop the broker for the ``with`` block, then restart it on the same ports.

        Meanwhile both ports are held by listening sockets that never accept
        (:func:`silent_endpoint`): clients connect but get no reply, and no
        other process can take the ports.  A stop that does not exit with
        code 0 raises RuntimeError; if the block raises, the broker stays stopped."""
        code = self.stop()
        if code != 0:
            raise RuntimeError(f"broker exited with code {code} on SIGTERM{self._stderr_tail()}")
        with silent_endpoint(self.port, bind_timeout), silent_endpoint(self.events_port, bind_timeout):
            yield self
        self._start_on_same_ports(bind_timeout)

    def _start_on_same_ports(self, bind_timeout: float) -> "BrokerProcess":
        deadline = time.monotonic() + bind_timeout
        pause = threading.Event()
        while True:
            try:
                return self.start()
            except RuntimeError as exc:
                if "cannot bind" not in str(exc) or time.monotonic() >= deadline:
                    raise
            pause.wait(0.05)  # pacing between attempts, not synchronisation

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        # pread, not seek + read: the running daemon shares the file offset
        # and would write over what a seek to 0 rewinds
        fd = self._stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")

    def _stderr_tail(self) -> str:
        text = self.stderr_text().strip()
        return f"; stderr:\n{text[-2000:]}" if text else ""

    def __repr__(self) -> str:
        return f"<BrokerProcess {self.endpoint} events={self.events_endpoint}>"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel's choice).

    Nothing keeps it free: any process may bind it first.  For an endpoint
    nobody serves use :func:`silent_endpoint`; to restart a broker on its
    ports, :meth:`BrokerProcess.restart` or :meth:`BrokerProcess.outage`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_endpoint(port: int = 0, bind_timeout: float = 10.0) -> Iterator[str]:
    """``tcp://127.0.0.1:<port>`` served by nobody, for the ``with`` block.

    A listening socket that never accepts holds the port: the kernel makes
    connections but nothing answers them (a request gets no reply), and no
    other process can take the port meanwhile, as it could take a port that
    is merely free.  ``port=0``: the kernel picks one; a given port still
    bound elsewhere is retried for up to ``bind_timeout`` s."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # as on the broker's own listeners: connections of a stopped broker
        # lingering in TIME_WAIT on the port do not block the bind
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + bind_timeout
        pause = threading.Event()
        while True:
            try:
                holder.bind(("127.0.0.1", port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or port == 0 or time.monotonic() >= deadline:
                    raise
            pause.wait(0.05)  # pacing between attempts, not synchronisation
        holder.listen(64)
        yield f"tcp://127.0.0.1:{holder.getsockname()[1]}"
    finally:
        holder.close()


def _pump(stream: IO[bytes], lines: "queue.Queue[Optional[bytes]]") -> None:
    """Read the broker's stdout to the end, so that it can never block on it."""
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(None)


@contextmanager
def broker(
    binary: Optional[str] = None,
    *,
    startup_timeout: float = 10.0,
    check_exit: bool = True,
    env: Optional[Dict[str, str]] = None,
    stop_timeout: float = 10.0,
    **settings: Any,
) -> Iterator[BrokerProcess]:
    """Run a broker on ephemeral loopback ports for the ``with`` block.

    ``env``: the daemon's environment (default: this process's).  On exit
    the broker gets SIGTERM; with ``check_exit`` an exit code other than 0
    (a crash, a sanitizer report, a hang killed after ``stop_timeout`` s)
    raises RuntimeError with the end of its stderr."""
    path = binary or find_broker_binary()
    if path is None:
        raise BrokerNotFound(
            "garbagetruck broker binary not found: set GT_BROKER_BIN, put garbagetruck on PATH, "
            "or build it (cmake --build build --target gtbrokerd: the daemon, build/broker/garbagetruck)"
        )
    process = BrokerProcess(path, settings, startup_timeout, env)
    process.start()
    try:
        yield process
    except BaseException:
        process.stop(stop_timeout)
        raise
    code = process.stop(stop_timeout)
    if check_exit and code not in (0, None):
        raise RuntimeError(f"broker exited with code {code} on SIGTERM{process._stderr_tail()}")


@contextmanager
def curve_broker(
    keyring: Optional[CurveKeyring] = None, binary: Optional[str] = None, **kwargs: Any
) -> Iterator[BrokerProcess]:
    """:func:`broker` with CURVE: ``--curve-cert`` and ``--curve-clients`` of
    ``keyring`` (a new :class:`CurveKeyring` if None, removed afterwards),
    which the process carries as ``curve``.  Other arguments as for
    :func:`broker`."""
    owned = keyring is None
    ring = keyring if keyring is not None else CurveKeyring()
    try:
        settings = dict(kwargs)
        settings.update(ring.broker_settings())
        with broker(binary, **settings) as process:
            process.curve = ring
            yield process
    finally:
        if owned:
            ring.close()


try:  # the fixtures, when pytest is around
    import pytest
except ImportError:  # pragma: no cover
    pass
else:
    __all__ += ["broker_fixture", "broker_factory", "curve_broker_fixture"]

    @pytest.fixture(name="broker")
    def broker_fixture(request: Any) -> Iterator[BrokerProcess]:
        """The ``broker`` fixture: a broker with DEFAULT_TEST_SETTINGS, updated
        by ``request.param`` (indirect parametrization) when given."""
        settings = dict(DEFAULT_TEST_SETTINGS)
        settings.update(getattr(request, "param", None) or {})
        with broker(**settings) as process:
            yield process

    @pytest.fixture(name="curve_broker")
    def curve_broker_fixture(request: Any) -> Iterator[BrokerProcess]:
        """The ``curve_broker`` fixture: a CURVE broker with DEFAULT_TEST_SETTINGS
        (updated by ``request.param``) and a fresh keyring, ``curve_broker.curve``."""
        settings = dict(DEFAULT_TEST_SETTINGS)
        settings.update(getattr(request, "param", None) or {})
        with curve_broker(**settings) as process:
            yield process

    @pytest.fixture
    def broker_factory() -> Iterator[Callable[..., BrokerProcess]]:
        """``broker_factory(**settings)`` starts a broker; all stop after the test."""
        started: List[Any] = []

        def start(**settings: Any) -> BrokerProcess:
            manager = broker(**settings)
            process = manager.__enter__()
            started.append(manager)
            return process

        yield start
        for manager in reversed(started):
            manager.__exit__(None, None, None)
