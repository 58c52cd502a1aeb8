"""The broker's config file and start-up messages, against the real daemon
(issue 15): --config FILE / GC_CONFIG, precedence (flags over environment
over file over defaults), errors naming the file and the line, every setting
in --help and in the README, the one-WARN clash of the default metrics port,
GC_CALLBACK_ALLOW refused at start, and a failed PostgreSQL connection said
once with the right advice.

Binary: GT_BROKER_BIN, else GT_BUILD_DIR (default <repo>/build) +
broker/garbagetruck.  Every daemon runs on loopback; none is left running.
No sleeps: every wait is a read with a deadline.
"""
import os
import re
import signal
import socket
import subprocess
import json
import selectors
import time
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))

DEADLINE = 30.0         # seconds any single wait may take (generous: sanitizer builds)


def clean_env(**extra):
    """The environment without any broker setting, plus extra; GC_CONFIG
    empty so that a packaged /etc/garbagetruck/garbagetruck.conf is not read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GC_") and k != "DATABASE_URL"}
    env["GC_CONFIG"] = ""
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_to_exit(args, env):
    """Run the daemon expecting it to stop by itself: (rc, stdout, stderr)."""
    done = subprocess.run([BROKER_BIN, *args], env=env, capture_output=True, text=True,
                          timeout=DEADLINE)
    return done.returncode, done.stdout, done.stderr


def run_until_ready(args, env):
    """Start the daemon, wait for its ready line, stop it with SIGINT:
    (ready line, stderr).  Fails if it exits before it is ready."""
    proc = subprocess.Popen([BROKER_BIN, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ready = ""
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + DEADLINE
        while not ready and time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = proc.stdout.readline()
                if not line:
                    break
                if line.startswith("garbagetruck ready"):
                    ready = line.strip()
        selector.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert ready, f"no ready line (exit {proc.returncode}); stderr:\n{stderr}"
    assert proc.returncode == 0, stderr
    return ready, stderr


def write(tmp_path, text, name="garbagetruck.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def start_fields(stderr):
    """The fields of the JSON 'starting' log line."""
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "starting" or record.get("message") == "starting":
                return record
    raise AssertionError(f"no JSON starting line in:\n{stderr}")


# ---------------------------------------------------------------------------
# Precedence, end to end

def test_precedence_flags_env_file_defaults(tmp_path):
    file_port, file_events, env_events = free_port(), free_port(), free_port()
    path = write(tmp_path, f"""# written by test_config_file.py
GC_SERVER_PORT={file_port}
  GC_EVENTS_PORT = {file_events}
GC_MAX_LEASES_PER_SERVICE=3
GC_METRICS_PORT=0
GC_LOG_FORMAT="json"

GC_CALLBACK_SECRET="a secret # with a hash"
""")
    env = clean_env(GC_EVENTS_PORT=str(env_events), GC_MAX_LEASES_PER_SERVICE="4")
    ready, stderr = run_until_ready(["--config", path, "--max-leases-per-service", "5"], env)
    # file (requests port) < env (events port) < flag (max leases); the rest defaults
    assert ready == (f"garbagetruck ready requests=tcp://127.0.0.1:{file_port} "
                     f"events=tcp://127.0.0.1:{env_events}")
    fields = start_fields(stderr)        # json: the file's GC_LOG_FORMAT
    assert fields["config"] == path
    assert fields["GC_SERVER_PORT"] == str(file_port)
    assert fields["GC_EVENTS_PORT"] == str(env_events)
    assert fields["GC_MAX_LEASES_PER_SERVICE"] == "5"
    assert fields["GC_EVENT_HISTORY"] == "100000"
    assert fields["GC_CALLBACK_SECRET"] == "***"
    assert "a secret" not in stderr


def test_gc_config_names_the_file(tmp_path):
    port = free_port()
    path = write(tmp_path, f"GC_SERVER_PORT={port}\nGC_EVENTS_PORT=0\nGC_METRICS_PORT=0\n")
    ready, _ = run_until_ready([], clean_env(GC_CONFIG=path))
    assert f"requests=tcp://127.0.0.1:{port} " in ready
    # --config wins over GC_CONFIG
    other = write(tmp_path, "GC_SERVER_PORT=0\nGC_EVENTS_PORT=0\nGC_METRICS_PORT=0\n", "other.conf")
    ready, _ = run_until_ready([f"--config={other}"], clean_env(GC_CONFIG=path))
    assert f"requests=tcp://127.0.0.1:{port} " not in ready


# ---------------------------------------------------------------------------
# Errors name the file and the line; exit 2

@pytest.mark.parametrize("text, line, message", [
    ("# ok\n\nGC_SERVER_PORT=5x\n", 3, "GC_SERVER_PORT: '5x' is not a port number (0 .. 65535)"),
    ("GC_SERVER_PORT=1\nGC_SERVR_PORT=2\n", 2, "unknown setting 'GC_SERVR_PORT'"),
    ("GC_MIN_LEASE_DURATION=soon\n", 1, "GC_MIN_LEASE_DURATION: 'soon' is not a number of seconds"),
    ("GC_LOG_LEVEL=loud\n", 1, "GC_LOG_LEVEL: 'loud' is not error, warn, info or debug"),
    ("just words\n", 1, "not NAME=value"),
    ("GC_BROKER_ID='single'\n", 1, "a single-quoted value"),
])
def test_bad_file_names_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    rc, stdout, stderr = run_to_exit(["--config", path], clean_env())
    assert rc == 2
    assert stdout == ""
    assert stderr.startswith(f"garbagetruck: {path}:{line}: {message}"), stderr
    assert stderr.count("\n") == 1


def test_missing_named_file_is_an_error(tmp_path):
    path = str(tmp_path / "absent.conf")
    for args, env in ((["--config", path], clean_env()), ([], clean_env(GC_CONFIG=path))):
        rc, _, stderr = run_to_exit(args, env)
        assert rc == 2
        assert stderr == f"garbagetruck: cannot read the config file {path}: No such file or directory\n"


def test_bad_file_is_an_error_even_when_overridden(tmp_path):
    path = write(tmp_path, "GC_SERVER_PORT=x\n")
    rc, _, stderr = run_to_exit(["--config", path, "--port", "0"], clean_env(GC_SERVER_PORT="0"))
    assert rc == 2 and f"{path}:1: GC_SERVER_PORT" in stderr


def test_help_ignores_a_broken_file(tmp_path):
    path = write(tmp_path, "nonsense\n")
    rc, stdout, _ = run_to_exit(["--help"], clean_env(GC_CONFIG=path))
    assert rc == 0 and "--config FILE" in stdout


# ---------------------------------------------------------------------------
# Every setting in --help and in the README

def readme_settings():
    with open(os.path.join(REPO, "README.md")) as readme:
        text = readme.read()
    return set(re.findall(r"^\| `((?:GC_[A-Z_]+)|DATABASE_URL)` \|", text, re.M))


def test_every_setting_in_help_and_readme():
    rc, usage, _ = run_to_exit(["--help"], clean_env())
    assert rc == 0
    in_help = set(re.findall(r"^\s+--\S+(?: \S+)?\s+((?:GC_[A-Z_]+)|DATABASE_URL)\s", usage, re.M))
    for name in ("GC_LOG_LEVEL", "GC_LOG_FORMAT", "GC_CLEANUP_INTERVAL", "GC_CONFIG", "DATABASE_URL",
                 "GC_INSECURE", "GC_METRICS_PORT"):
        assert name in in_help, name
    in_readme = readme_settings()
    assert in_help - in_readme == set(), "in --help, not in README's settings tables"
    assert in_readme - in_help == set(), "in README's settings tables, not in --help"


def test_every_help_setting_is_accepted_in_a_file(tmp_path):
    """Each setting --help lists is a known name in a file (its value then
    decides): never 'unknown setting'.  A bad flag after it keeps the daemon
    from starting whatever the value did."""
    rc, usage, _ = run_to_exit(["--help"], clean_env())
    names = set(re.findall(r"^\s+--\S+(?: \S+)?\s+((?:GC_[A-Z_]+)|DATABASE_URL)\s", usage, re.M))
    names.discard("GC_CONFIG")
    for name in sorted(names):
        path = write(tmp_path, f"{name}=not-a-valid-value-surely\n")
        rc, _, stderr = run_to_exit(["--config", path, "--port", "bad"], clean_env())
        assert rc == 2 and "unknown setting" not in stderr, stderr


# ---------------------------------------------------------------------------
# The default metrics port in use: one WARN, no ERROR

def hold_port_9090():
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 9090))
        holder.listen(1)
    except OSError as error:
        holder.close()
        pytest.skip(f"port 9090 is in use already ({error}): cannot stage the clash safely")
    return holder


def test_default_metrics_port_in_use_is_one_warn(tmp_path):
    holder = hold_port_9090()
    try:
        path = write(tmp_path, "GC_SERVER_PORT=0\nGC_EVENTS_PORT=0\n")
        ready, stderr = run_until_ready(["--config", path], clean_env())
    finally:
        holder.close()
    assert "metrics=" not in ready
    lines = [line for line in stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1, stderr
    assert " WARN garbagetruck: cannot serve metrics on http://127.0.0.1:9090" in lines[0]
    assert "GC_METRICS_PORT" in lines[0]
    assert " ERROR " not in stderr


def test_chosen_metrics_port_in_use_stops_the_start(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        path = write(tmp_path, f"GC_SERVER_PORT=0\nGC_EVENTS_PORT=0\nGC_METRICS_PORT={port}\n")
        rc, stdout, stderr = run_to_exit(["--config", path], clean_env())
    finally:
        holder.close()
    assert rc == 1 and "ready" not in stdout
    assert f"garbagetruck: cannot serve metrics on http://127.0.0.1:{port}: Address already in use" in stderr
    assert " ERROR " not in stderr


# ---------------------------------------------------------------------------
# GC_CALLBACK_ALLOW: prefixes checked at start

def test_callback_allow_refused_from_flag_env_and_file(tmp_path):
    why = "entry 'ftp://x' is not a usable URL prefix: not an http:// or https:// URL"
    rc, _, stderr = run_to_exit(["--callback-allow", "ftp://x"], clean_env())
    assert rc == 2 and stderr == f"garbagetruck: --callback-allow: {why}\n"
    rc, _, stderr = run_to_exit([], clean_env(GC_CALLBACK_ALLOW="http://127.0.0.1/ok/,ftp://x"))
    assert rc == 2 and stderr == f"garbagetruck: GC_CALLBACK_ALLOW: {why}\n"
    path = write(tmp_path, "# allow list\nGC_CALLBACK_ALLOW=\"http://127.0.0.1/ok/, ftp://x\"\n")
    rc, _, stderr = run_to_exit(["--config", path], clean_env())
    assert rc == 2 and stderr == f"garbagetruck: {path}:2: GC_CALLBACK_ALLOW: {why}\n"


def test_callback_allow_good_prefixes_start(tmp_path):
    path = write(tmp_path, "GC_SERVER_PORT=0\nGC_EVENTS_PORT=0\nGC_METRICS_PORT=0\n"
                           "GC_CALLBACK_ALLOW=https://cleanup.internal/,http://127.0.0.1:8080/hooks/\n")
    run_until_ready(["--config", path], clean_env())


# ---------------------------------------------------------------------------
# A failed PostgreSQL connection at start: said once, with the right advice

def postgres_url():
    url = os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgresql://"):
        pytest.skip("DATABASE_URL (postgresql://user:password@host:port/db) is not set")
    return urllib.parse.urlsplit(url)


def pg_start(url):
    env = clean_env(GC_STORAGE_BACKEND="postgres", DATABASE_URL=url, GC_SERVER_PORT="0",
                    GC_EVENTS_PORT="0", GC_METRICS_PORT="0")
    return run_to_exit([], env)


def test_wrong_password_said_once_without_wait_advice():
    parts = postgres_url()
    netloc = f"{parts.username}:wrong-{os.getpid()}@{parts.hostname}:{parts.port or 5432}"
    rc, _, stderr = pg_start(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    assert rc == 1
    message = [line for line in stderr.splitlines() if line.startswith("garbagetruck: ")]
    assert len(message) == 1, stderr
    assert message[0].count("password authentication failed") == 1, message[0]
    assert "check the user name and password in DATABASE_URL" in message[0]
    assert "GC_DB_CONNECT_WAIT" not in message[0]
    assert f"wrong-{os.getpid()}" not in stderr


def test_unreachable_server_suggests_waiting():
    parts = postgres_url()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{free_port()}"
    rc, _, stderr = pg_start(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    assert rc == 1
    message = [line for line in stderr.splitlines() if line.startswith("garbagetruck: ")]
    assert len(message) == 1, stderr
    assert "does not answer" in message[0] and "set gc_db_connect_wait" in message[0].lower()
