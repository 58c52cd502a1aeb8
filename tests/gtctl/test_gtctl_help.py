"""gtctl's help, environment, messages and completion, against the real broker
daemon: `gtctl help COMMAND` / `COMMAND --help`, GT_SERVICE, durations in
seconds in messages, list's paging hint and --all, watch's timeout exit code,
bad endpoints, and the bash completion generated from the command table
(issue 15).

Binaries as in test_gtctl.py: GT_BROKER_BIN and GT_GTCTL_BIN, else
GT_BUILD_DIR (default <repo>/build) + broker/garbagetruck and sdk/c/gtctl.
No sleeps: every wait is a process wait.
"""
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
from garbagetruck.testing import broker as run_daemon
from garbagetruck.testing import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))
GTCTL_BIN = os.environ.get("GT_GTCTL_BIN", os.path.join(BUILD, "sdk", "c", "gtctl"))

COMMANDS = ["health", "stats", "create", "renew", "release", "get", "retry", "list", "watch",
            "replay", "keepalive", "cluster", "keygen", "help", "completion"]
GLOBAL_FLAGS = {"--endpoint", "--events", "--json", "--timeout-ms", "--server-key",
                "--client-cert", "--help"}


def _env(**extra):
    """This environment without gtctl's variables, plus extra."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("GT_ENDPOINT", "GT_EVENTS_ENDPOINT", "GT_SERVICE", "GT_SERVER_KEY",
                          "GT_CLIENT_CERT")}
    env.update(extra)
    return env


def run(*args, env=None, timeout=60):
    return subprocess.run([GTCTL_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else _env())


def _daemon(**settings):
    for path in (BROKER_BIN, GTCTL_BIN):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build first (cmake --build build)")
    return run_daemon(BROKER_BIN, startup_timeout=30, stop_timeout=30, **settings)


@pytest.fixture(scope="module")
def broker():
    with _daemon(min_lease=0.05) as daemon:
        yield daemon


def at(broker, *args, env=None):
    """gtctl against broker."""
    return run("--endpoint", broker.endpoint, "--events", broker.events_endpoint, *args, env=env)


def ok(broker, *args, env=None):
    result = at(broker, *args, env=env)
    assert result.returncode == 0, f"gtctl {args}: {result.stderr}"
    return result.stdout


# --------------------------------------------------------------------------
# help COMMAND, COMMAND --help

@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_help(command):
    result = run("help", command)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"usage: gtctl {command}")
    assert re.search(r"^examples?:\n  .*gtctl.*" + command, text, re.M), text
    body = text.split("\n\n")[1]                       # the description
    assert len(body.split()) >= 10, body
    # gtctl COMMAND --help, and -h, say the same; so does help's own --help
    assert run(command, "--help").stdout == text
    assert run(command, "-h").stdout == text
    assert run("help", command, "--help").stdout == text


def test_help_wins_over_bad_options():
    result = run("create", "--ttl", "abc", "--help")
    assert result.returncode == 2                     # an error before --help counts
    result = run("create", "--help", "--ttl", "abc", "--frobnicate")
    assert result.returncode == 0 and result.stdout.startswith("usage: gtctl create")


def test_help_of_an_unknown_command_exits_2():
    for args in (["help", "frobnicate"], ["frobnicate", "--help"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert "no command 'frobnicate'" in result.stderr and "keepalive" in result.stderr


def test_global_help():
    for args in (["--help"], ["help"], ["-h"]):
        result = run(*args)
        assert result.returncode == 0
        text = result.stdout
        assert text.startswith("usage: gtctl")
        for command in COMMANDS:
            assert re.search(rf"^  {command}\b", text, re.M), command
        for variable in ("GT_ENDPOINT", "GT_EVENTS_ENDPOINT", "GT_SERVICE"):
            assert "$" + variable in text
        assert "3 watch timed out before --count" in text
        assert "gtctl help COMMAND" in text


def test_usage_error_shows_the_command_s_synopsis():
    result = run("create", "--object", "o")
    assert result.returncode == 2
    assert result.stderr.startswith("gtctl: create needs --service (or $GT_SERVICE)\n"
                                    "usage: gtctl create --object ID")
    assert "gtctl help create" in result.stderr


# --------------------------------------------------------------------------
# GT_SERVICE

def test_gt_service_is_the_default_service(broker):
    env = _env(GT_SERVICE="env-service")
    lease_id = ok(broker, "create", "--object", "env-object", env=env).strip()
    lease = json.loads(ok(broker, "--json", "get", lease_id, env=env))
    assert lease["service_id"] == "env-service"
    # the flag wins
    other = ok(broker, "create", "--object", "env-object", "--service", "flag-service",
               env=env).strip()
    assert json.loads(ok(broker, "--json", "get", other))["service_id"] == "flag-service"
    # list filters by it; renew and release act as it
    listed = json.loads(ok(broker, "--json", "list", env=env))["leases"]
    assert {lease["service_id"] for lease in listed} == {"env-service"}
    ok(broker, "renew", lease_id, env=env)
    assert "RELEASED" in ok(broker, "release", lease_id, env=env)
    result = at(broker, "release", other, env=env)      # not env-service's
    assert result.returncode == 1 and result.stderr.startswith("PERMISSION_DENIED: ")
    # get takes no --service: GT_SERVICE does not make it one
    assert at(broker, "get", other, env=env).returncode == 0


def test_gt_service_empty_or_too_long(broker):
    result = at(broker, "create", "--object", "o", env=_env(GT_SERVICE=""))
    assert result.returncode == 2 and "needs --service" in result.stderr
    result = at(broker, "create", "--object", "o", env=_env(GT_SERVICE="s" * 129))
    assert result.returncode == 2 and "$GT_SERVICE" in result.stderr


# --------------------------------------------------------------------------
# Durations in seconds

def test_ttl_out_of_the_broker_s_range_is_said_in_seconds():
    with _daemon(min_lease=1) as daemon:
        result = at(daemon, "create", "--object", "o", "--service", "s", "--ttl", "0.5")
        assert result.returncode == 1
        assert re.fullmatch(r"INVALID_ARGUMENT: ttl 0\.5 s is outside the broker's range "
                            r"\[1, \d+\] s\n", result.stderr), result.stderr
        assert "ttl_ms" not in result.stderr and "500" not in result.stderr
        lease_id = ok(daemon, "create", "--object", "o", "--service", "s", "--ttl", "2").strip()
        result = at(daemon, "renew", lease_id, "--service", "s", "--ttl", "0.25")
        assert result.returncode == 1
        assert result.stderr.startswith("INVALID_ARGUMENT: ttl 0.25 s is outside")


def test_no_answer_is_said_in_seconds():
    result = run("--endpoint", f"tcp://127.0.0.1:{free_port()}", "--timeout-ms", "250", "health")
    assert result.returncode == 1
    assert result.stderr == "UNAVAILABLE: broker did not answer within 0.25 s\n"


# --------------------------------------------------------------------------
# list: the hint keeps the filters; --all

def _hint(stderr):
    match = re.fullmatch(r"more leases: (gtctl .*) \(or --all\)\n", stderr)
    assert match, stderr
    return shlex.split(match.group(1))


def test_list_hint_keeps_the_filters(broker):
    service = "hint service"                          # a blank: the hint quotes it
    ids = [ok(broker, "create", "--object", f"hint-{n}", "--type", "temporary_file",
              "--service", service, "--ttl", "60").strip() for n in range(3)]
    # others of the same service and type in another state, and of other services
    gone = ok(broker, "create", "--object", "hint-gone", "--type", "TEMPORARY_FILE",
              "--service", service).strip()
    ok(broker, "release", gone, "--service", service)
    ok(broker, "create", "--object", "hint-0", "--type", "TEMPORARY_FILE", "--service", "other")
    first = at(broker, "list", "--service", service, "--type", "temporary_file",
               "--state", "active", "--limit", "2")
    assert first.returncode == 0, first.stderr
    words = _hint(first.stderr)
    assert words[:3] == ["gtctl", "--endpoint", broker.endpoint]
    cursor = words[words.index("--cursor") + 1]
    assert words[3:] == ["list", "--service", service, "--type", "TEMPORARY_FILE",
                         "--state", "ACTIVE", "--limit", "2", "--cursor", cursor]
    shown = [line.split()[0] for line in first.stdout.splitlines()[1:]]
    # following the hint as it is gives the rest, the filters kept
    rest = subprocess.run([GTCTL_BIN, *words[1:]], capture_output=True, text=True, timeout=60,
                          env=_env())
    assert rest.returncode == 0, rest.stderr
    assert rest.stderr == ""                          # the last page
    shown += [line.split()[0] for line in rest.stdout.splitlines()[1:]]
    assert sorted(shown) == sorted(ids)
    # the object filter too
    ok(broker, "create", "--object", "hint-0", "--service", service)
    page = at(broker, "list", "--object", "hint-0", "--service", service, "--limit", "1")
    assert page.returncode == 0
    assert re.fullmatch(r"more leases: gtctl --endpoint \S+ list --service 'hint service' "
                        r"--object hint-0 --limit 1 --cursor \S+ \(or --all\)\n",
                        page.stderr), page.stderr


def test_list_all_follows_the_cursor(broker):
    ids = [ok(broker, "create", "--object", f"all-{n}", "--service", "all-service",
              "--ttl", "60").strip() for n in range(5)]
    result = at(broker, "list", "--service", "all-service", "--limit", "2", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""                        # no hint: nothing is left
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ID ") and len(lines) == 6        # one header, five rows
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(ids)
    listed = json.loads(ok(broker, "--json", "list", "--service", "all-service", "--limit", "2",
                           "--all"))
    assert sorted(lease["id"] for lease in listed["leases"]) == sorted(ids)
    assert "cursor" not in listed
    # from a cursor on
    first = at(broker, "list", "--service", "all-service", "--limit", "2")
    words = _hint(first.stderr)
    cursor = words[words.index("--cursor") + 1]
    rest = json.loads(ok(broker, "--json", "list", "--service", "all-service", "--limit", "2",
                         "--cursor", cursor, "--all"))
    assert len(rest["leases"]) == 3
    result = at(broker, "list", "--all", "--limit", "1", "--service", "no-such-service")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1


def test_all_is_list_s_only(broker):
    result = at(broker, "replay", "--after", "0", "--all")
    assert result.returncode == 2 and "replay does not take --all" in result.stderr


# --------------------------------------------------------------------------
# watch: timed out before --count

def test_watch_timeout_before_count_says_so_and_exits_3(broker):
    result = at(broker, "watch", "--service", "nobody-uses-this", "--count", "2",
                "--timeout", "0.3")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == "watch: timed out after 0.3 s with 0 of 2 events\n"
    # some events, not enough
    start = json.loads(ok(broker, "--json", "stats"))["stats"]["last_seq"]
    ok(broker, "create", "--object", "watched", "--service", "watch-timeout", "--ttl", "60")
    result = at(broker, "watch", "--service", "watch-timeout", "--from", str(start + 1),
                "--count", "5", "--timeout", "1")
    assert result.returncode == 3
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == "watch: timed out after 1 s with 1 of 5 events\n"
    assert "exit 0, or 3 if --count was given" in run("help", "watch").stdout


# --------------------------------------------------------------------------
# Bad endpoints

EXPECTED = "expected tcp://HOST:PORT (or ipc://PATH), several separated by commas"


@pytest.mark.parametrize("endpoint", ["bogus", "tcp://", "tcp://host", "tcp://host:http",
                                      "tcp://host:70000", "127.0.0.1:50051"])
def test_bad_endpoint_is_named(endpoint):
    result = run("--endpoint", endpoint, "health")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"gtctl: invalid endpoint '{endpoint}' (--endpoint)\n"
                                    + EXPECTED), result.stderr
    assert "or --service" not in result.stderr


def test_bad_endpoint_in_a_list_or_the_environment(broker):
    result = run("--endpoint", f"{broker.endpoint},bogus", "health")
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"gtctl: invalid endpoint 'bogus' in --endpoint '{broker.endpoint},bogus'\n" + EXPECTED)
    result = run("health", env=_env(GT_ENDPOINT="bogus"))
    assert result.returncode == 2
    assert result.stderr.startswith("gtctl: invalid endpoint 'bogus' ($GT_ENDPOINT)\n")
    result = run("--endpoint", broker.endpoint, "--events", "nowhere", "watch", "--timeout", "0.1")
    assert result.returncode == 2
    assert result.stderr.startswith("gtctl: invalid endpoint 'nowhere' (--events)\n" + EXPECTED)
    # the flag wins over a bad environment
    assert run("--endpoint", broker.endpoint, "health",
               env=_env(GT_ENDPOINT="bogus")).returncode == 0


# --------------------------------------------------------------------------
# Bash completion, from the command table

BASH = shutil.which("bash")


def complete(*words):
    """The completions bash offers for words (the last one being typed)."""
    script = run("completion", "bash")
    assert script.returncode == 0, script.stderr
    program = ('source /dev/stdin; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
               'COMP_LINE="$*"; _gtctl; printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run([BASH, "--norc", "-c", program, "bash", *words], input=script.stdout,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_completion_commands_and_flags():
    assert complete("gtctl", "li") == ["list"]
    assert {"--service", "--state"} <= set(complete("gtctl", "list", "--s"))
    assert "--all" in complete("gtctl", "list", "--")
    assert complete("gtctl", "ke") == ["keepalive", "keygen"]
    assert set(complete("gtctl", "")) == set(COMMANDS)
    # after global options, values split at ':' included
    assert complete("gtctl", "--endpoint", "tcp", ":", "//a", ":", "1", "li") == ["list"]
    assert complete("gtctl", "--json", "li") == ["list"]
    # option values
    assert complete("gtctl", "list", "--state", "") == ["ACTIVE", "RELEASED", "EXPIRED"]
    assert complete("gtctl", "create", "--type", "TEMP") == ["TEMPORARY_FILE"]
    assert complete("gtctl", "create", "--type", "=", "TEMP") == ["TEMPORARY_FILE"]
    assert complete("gtctl", "list", "--service", "") == []
    assert complete("gtctl", "help", "wa") == ["watch"]
    assert complete("gtctl", "completion", "") == ["--help", "bash"]
    assert complete("gtctl", "keepalive", "ID", "--r") == ["--release-on-exit"]


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_completion_is_installed_with_complete():
    script = run("completion", "bash").stdout
    result = subprocess.run([BASH, "--norc", "-c", "source /dev/stdin; complete -p gtctl"],
                            input=script, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "complete -F _gtctl gtctl"
    assert run("completion", "zsh").returncode == 2
    assert run("completion").returncode == 2


@pytest.mark.skipif(BASH is None, reason="no bash")
@pytest.mark.parametrize("command", COMMANDS)
def test_completion_and_help_agree(command):
    """The flags completion offers for a command are those its help explains:
    both come from the one table."""
    flags = {word for word in complete("gtctl", command, "--") if word.startswith("--")}
    own = flags - GLOBAL_FLAGS
    help_text = run("help", command).stdout
    for flag in own:
        assert re.search(rf"{flag}\b", help_text), (command, flag)
    # and the parser takes each of them
    synopsis = help_text.split("\n\n")[0]
    for flag in re.findall(r"--[a-z-]+", synopsis):
        assert flag in flags, (command, flag)
