"""The Debian package (issue 15): `cmake --build BUILD --target package`
(CPack, cmake/GarbageTruckDeb.cmake), then what it holds, checked from the
.deb itself, then an install on this machine with dpkg -i: the installed
daemon and gtctl, the unit (systemd-analyze verify), the system user, the
conffile kept over a reinstall, the installed broker serving a program built
against the installed library, and dpkg --purge leaving nothing behind.

BUILD is GT_BUILD_DIR (default <repo>/build), already built.  The install
tests need root and dpkg and a machine with no garbagetruck package of its
own: elsewhere they report SKIPPED with the reason.  The test command runs
them (as root, on a fresh machine).  Every wait is bounded; the one daemon
started runs on loopback with ephemeral ports and is stopped by its pid.
"""
import grp
import os
import pwd
import re
import selectors
import shutil
import signal
import stat
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build")))
with open(os.path.join(REPO, "VERSION")) as version_file:
    VERSION = version_file.read().strip()
DEADLINE = 60.0                 # seconds any single wait may take
CONF = "/etc/garbagetruck/garbagetruck.conf"
UNIT = "/usr/lib/systemd/system/garbagetruck.service"

# Debian's runtime libraries the package must name in Depends
RUNTIME_PACKAGES = ["libczmq4", "libzmq5", "libmsgpackc2", "libjansson4", "libpq5",
                    "libcurl4", "libsodium23", "libmicrohttpd12", "libc6"]
# What the package must hold (paths as dpkg-deb -c shows them, without "./")
REQUIRED_FILES = [
    "usr/bin/garbagetruck",
    "usr/bin/gtctl",
    f"usr/lib/libgarbagetruck.so.{VERSION}",
    "usr/lib/libgarbagetruck.so.0",
    "usr/lib/libgarbagetruck.so",
    "usr/lib/libgarbagetruck.a",
    "usr/include/garbagetruck/garbagetruck.h",
    "usr/include/garbagetruck/gt_client.h",
    "usr/include/garbagetruck/gt_version.h",
    "usr/lib/pkgconfig/garbagetruck.pc",
    "usr/lib/pkgconfig/garbagetruck-broker.pc",
    "usr/lib/cmake/GarbageTruck/GarbageTruckConfig.cmake",
    "usr/lib/cmake/GarbageTruck/GarbageTruckConfigVersion.cmake",
    "usr/lib/systemd/system/garbagetruck.service",
    "usr/lib/sysusers.d/garbagetruck.conf",
    "etc/garbagetruck/garbagetruck.conf",
    "usr/share/man/man8/garbagetruck.8.gz",
    "usr/share/man/man1/gtctl.1.gz",
    "usr/share/bash-completion/completions/gtctl",
    "usr/share/doc/garbagetruck/copyright",
]


def run(args, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 600)
    return subprocess.run(args, **kwargs)


def clean_env():
    """This environment without any broker or gtctl setting"""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("GC_", "GT_")) and k != "DATABASE_URL"}


def help_settings(text):
    """(flag, variable) of each setting line of `garbagetruck --help`"""
    settings = []
    for line in text.splitlines():
        match = re.match(r"\s+(--[a-z-]+)(?:\s+(?:TEXT|N|S|FILE))?\s+((?:GC_|DATABASE_URL)[A-Z_]*)?", line)
        if match:
            settings.append((match.group(1), match.group(2)))
    return settings


def gtctl_commands(text):
    """The command names of `gtctl --help` (its command table)"""
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", text, re.M)]


# ---------------------------------------------------------------------------
# The package, and what it holds

@pytest.fixture(scope="module")
def deb():
    if not os.path.isfile(os.path.join(BUILD, "CMakeCache.txt")):
        pytest.skip(f"no build directory {BUILD} (build it first)")
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not found: not a Debian machine")
    built = run(["cmake", "--build", BUILD, "--target", "package"])
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    debs = [f for f in os.listdir(BUILD) if re.fullmatch(rf"garbagetruck_{re.escape(VERSION)}_[a-z0-9]+\.deb", f)]
    assert len(debs) == 1, f"expected one garbagetruck_{VERSION}_ARCH.deb in {BUILD}, found {debs}"
    return os.path.join(BUILD, debs[0])


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    """(files root, control directory) of the package, unpacked"""
    root = tmp_path_factory.mktemp("deb-root")
    control = tmp_path_factory.mktemp("deb-control")
    assert run(["dpkg-deb", "-x", deb, str(root)]).returncode == 0
    assert run(["dpkg-deb", "-e", deb, str(control)]).returncode == 0
    return str(root), str(control)


def control_fields(control_dir):
    fields = {}
    with open(os.path.join(control_dir, "control")) as f:
        for line in f:
            if line[:1] not in (" ", "\t") and ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
    return fields


def test_package_holds_every_part(deb):
    listing = run(["dpkg-deb", "-c", deb]).stdout
    paths = {re.sub(r"^\./", "", line.split()[5]) for line in listing.splitlines() if line.strip()}
    missing = [p for p in REQUIRED_FILES if p not in paths]
    assert not missing, f"missing from the package: {missing}"
    tests = [p for p in paths if "test" in os.path.basename(p)]
    assert not tests, f"test files in the package: {tests}"


def test_control_names_debian_runtime_libraries(unpacked):
    _, control = unpacked
    fields = control_fields(control)
    assert fields["Package"] == "garbagetruck"
    assert fields["Version"] == VERSION
    depends = {re.split(r"[\s(]", alt.strip())[0]
               for dep in fields["Depends"].split(",") for alt in dep.split("|")}
    missing = [p for p in RUNTIME_PACKAGES if p not in depends]
    assert not missing, f"Depends lacks {missing}: {fields['Depends']}"
    assert not [d for d in depends if d.endswith("-dev")], fields["Depends"]


def test_config_is_a_conffile_and_scripts_are_executable(unpacked):
    _, control = unpacked
    with open(os.path.join(control, "conffiles")) as f:
        assert [line.strip() for line in f if line.strip()] == [CONF]
    for script in ("postinst", "prerm", "postrm"):
        mode = os.stat(os.path.join(control, script)).st_mode
        assert mode & stat.S_IXUSR, f"{script} is not executable"


def test_shared_library_soname(unpacked):
    root, _ = unpacked
    lib = os.path.join(root, "usr/lib", f"libgarbagetruck.so.{VERSION}")
    dynamic = run(["readelf", "-d", lib]).stdout
    assert "Library soname: [libgarbagetruck.so.0]" in dynamic, dynamic
    assert os.readlink(os.path.join(root, "usr/lib/libgarbagetruck.so.0")) == f"libgarbagetruck.so.{VERSION}"


def unit_settings(path):
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


def test_unit_runs_as_its_user_hardened(unpacked):
    root, _ = unpacked
    unit = unit_settings(os.path.join(root, UNIT.lstrip("/")))
    expected = {
        "User": "garbagetruck", "Restart": "on-failure", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "PrivateTmp": "yes", "StateDirectory": "garbagetruck",
        "ExecStart": "/usr/bin/garbagetruck", "EnvironmentFile": "-" + CONF,
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], f"{key}={unit.get(key)}, expected {value}"
    with open(os.path.join(root, "usr/lib/sysusers.d/garbagetruck.conf")) as f:
        assert re.search(r"^u garbagetruck ", f.read(), re.M)


def test_unit_exposure_is_low(unpacked):
    """systemd's own scoring of the hardening (offline: no running systemd
    needed): at most 3.0 of 10, "OK" (the unit scores 1.7 today)"""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found (apt-get install systemd)")
    root, _ = unpacked
    done = run([analyze, "security", "--offline=true", "--threshold=30", os.path.join(root, UNIT.lstrip("/"))])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_config_file_shows_every_setting(unpacked):
    """The shipped config file names every setting of --help (commented out,
    at its default), so that it documents what can be set"""
    root, _ = unpacked
    with open(os.path.join(root, CONF.lstrip("/"))) as f:
        conf = f.read()
    help_text = run([os.path.join(root, "usr/bin/garbagetruck"), "--help"]).stdout
    names = [name for _, name in help_settings(help_text) if name and name != "GC_CONFIG"]
    assert len(names) > 30, help_text
    missing = [n for n in names if not re.search(rf"^#{n}=", conf, re.M)]
    assert not missing, f"not in the shipped {CONF}: {missing}"
    active = [line for line in conf.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not active, f"the shipped config sets something: {active}"


def test_man_pages_cover_every_setting_and_command(unpacked):
    root, _ = unpacked
    def page(name):
        text = run(["zcat", os.path.join(root, "usr/share/man", name)]).stdout
        return text.replace("\\-", "-")
    broker_page = page("man8/garbagetruck.8.gz")
    gtctl_page = page("man1/gtctl.1.gz")
    assert f'"garbagetruck {VERSION}"' in broker_page
    assert f'"gtctl {VERSION}"' in gtctl_page
    help_text = run([os.path.join(root, "usr/bin/garbagetruck"), "--help"]).stdout
    missing = [flag for flag, name in help_settings(help_text)
               if flag not in broker_page or (name and name not in broker_page)]
    assert not missing, f"not in garbagetruck.8: {missing}"
    gtctl_help = run([os.path.join(root, "usr/bin/gtctl"), "--help"]).stdout
    commands = gtctl_commands(gtctl_help)
    assert "keepalive" in commands and len(commands) > 10, gtctl_help
    missing = [c for c in commands if not re.search(rf"^\.B {c}\b", gtctl_page, re.M)]
    assert not missing, f"commands not in gtctl.1: {missing}"
    for variable in ("GT_ENDPOINT", "GT_EVENTS_ENDPOINT", "GT_SERVICE"):
        assert variable in gtctl_page


def test_bash_completion_is_gtctls_own(unpacked):
    root, _ = unpacked
    with open(os.path.join(root, "usr/share/bash-completion/completions/gtctl")) as f:
        shipped = f.read()
    generated = run([os.path.join(BUILD, "sdk/c/gtctl"), "completion", "bash"]).stdout
    assert shipped == generated and "complete" in shipped


def test_copyright_is_the_license(unpacked):
    root, _ = unpacked
    with open(os.path.join(root, "usr/share/doc/garbagetruck/copyright")) as f, \
         open(os.path.join(REPO, "LICENSE")) as license_file:
        assert f.read() == license_file.read()


# ---------------------------------------------------------------------------
# Installed with dpkg -i on this machine, then purged

def package_installed():
    status = run(["dpkg-query", "-W", "-f=${Status}", "garbagetruck"]).stdout
    return "installed" in status or "config-files" in status


@pytest.fixture(scope="module")
def installed(deb):
    if os.geteuid() != 0:
        pytest.skip("installing the package needs root")
    if package_installed():
        pytest.skip("this machine has a garbagetruck package of its own: not touching it")
    user_existed = True
    try:
        pwd.getpwnam("garbagetruck")
    except KeyError:
        user_existed = False
    done = run(["dpkg", "-i", deb])
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield deb
    finally:
        if package_installed():
            run(["dpkg", "--purge", "garbagetruck"])
        if not user_existed:
            # Debian's purge keeps a system user; this test made it, so it goes
            run(["userdel", "garbagetruck"])
            run(["groupdel", "garbagetruck"])


def test_installed_programs_print_the_version(installed):
    for program, name in (("/usr/bin/garbagetruck", "garbagetruck"), ("/usr/bin/gtctl", "gtctl")):
        done = run([program, "--version"], env=clean_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{name} {VERSION}"), done.stdout


def test_unit_passes_systemd_analyze_verify(installed):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found (apt-get install systemd)")
    done = run([analyze, "verify", UNIT])
    assert done.returncode == 0, done.stdout + done.stderr
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "garbagetruck" in line]
    assert not complaints, complaints


def test_installed_user_config_and_state_directory(installed):
    user = pwd.getpwnam("garbagetruck")
    assert user.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    conf = os.stat(CONF)
    assert stat.S_IMODE(conf.st_mode) == 0o640
    assert conf.st_uid == 0 and grp.getgrgid(conf.st_gid).gr_name == "garbagetruck"
    state = os.stat("/var/lib/garbagetruck")
    assert stat.S_IMODE(state.st_mode) == 0o700 and state.st_uid == user.pw_uid
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "garbagetruck"]).stdout
    assert CONF in conffiles


def test_installed_broker_serves_a_program_built_against_the_package(installed, tmp_path):
    """The installed daemon, as the garbagetruck user with the installed
    config file, answers gtctl and tests/install/client.c built with the
    system's pkg-config (no LD_LIBRARY_PATH: the library is where ld.so looks)"""
    client = tmp_path / "client"
    cflags = run(["pkg-config", "--cflags", "--libs", "garbagetruck"])
    assert cflags.returncode == 0, cflags.stderr
    built = run(["cc", "-o", str(client), os.path.join(REPO, "tests/install/client.c"), *cflags.stdout.split()])
    assert built.returncode == 0, built.stderr
    linked = run(["ldd", str(client)]).stdout
    assert re.search(r"libgarbagetruck\.so\.0 => /(usr/)?lib/libgarbagetruck\.so\.0", linked), linked

    env = clean_env()
    # As the service's user (not through runuser, which would stand between
    # the broker and the SIGTERM below)
    proc = subprocess.Popen(["/usr/bin/garbagetruck", "--port", "0", "--events-port", "0",
                             "--metrics-port", "0"],
                            user="garbagetruck", group="garbagetruck", extra_groups=[],
                            env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        assert ready, "the installed broker did not get ready"
        endpoint = re.search(r"requests=(\S+)", ready).group(1)
        health = run(["/usr/bin/gtctl", "--endpoint", endpoint, "health"], env=env, timeout=DEADLINE)
        assert health.returncode == 0 and VERSION in health.stdout, health.stdout + health.stderr
        talked = run([str(client), endpoint], env=env, timeout=DEADLINE)
        assert talked.returncode == 0, talked.stdout + talked.stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}: {stderr}"


def test_reinstall_keeps_an_edited_config(installed):
    with open(CONF, "a") as f:
        f.write("GC_LOG_LEVEL=warn\n")
    done = run(["dpkg", "-i", "--force-confold", installed])
    assert done.returncode == 0, done.stdout + done.stderr
    with open(CONF) as f:
        assert "GC_LOG_LEVEL=warn\n" in f.read()


def test_zz_purge_leaves_nothing(installed):
    done = run(["dpkg", "--purge", "garbagetruck"])
    assert done.returncode == 0, done.stdout + done.stderr
    for path in ("/usr/bin/garbagetruck", "/usr/bin/gtctl", UNIT, "/etc/garbagetruck",
                 "/var/lib/garbagetruck", "/usr/lib/libgarbagetruck.so.0"):
        assert not os.path.exists(path), f"{path} left after purge"
    assert not package_installed()
