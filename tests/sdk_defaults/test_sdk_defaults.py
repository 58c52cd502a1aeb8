"""The three SDKs agree (issue 15, "One vocabulary across the SDKs").

* Their defaults -- a call's timeout, the keep-alive interval (a fraction of
  the TTL) and its jitter -- as each SDK exports them:
  Python from the import (garbagetruck.DEFAULT_TIMEOUT, KEEPALIVE_TTL_FRACTION,
  KEEPALIVE_JITTER); C from $GT_BUILD_DIR/tests/sdk_defaults/gt_print_sdk_defaults
  (skipped without GT_BUILD_DIR; a build dir without the program fails); Go
  from `go run ./internal/printdefaults` in sdk/go (skipped without `go`).
  The two programs print one JSON line:
  {"default_timeout_ms": 5000, "keepalive_ttl_fraction": 0.333..., "keepalive_jitter": 0.1}
* The section "Names across the SDKs" of sdk/c, sdk/python and sdk/go's
  READMEs: the same tables in all three, and every name in them exists in
  its SDK.
"""

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The package of this source tree, not a copy installed earlier.
sys.path.insert(0, str(REPO / "sdk" / "python"))

import garbagetruck  # noqa: E402
from garbagetruck import AsyncClient, Client  # noqa: E402

KEYS = ("default_timeout_ms", "keepalive_ttl_fraction", "keepalive_jitter")
#: What issue 15 agreed on.
AGREED = {"default_timeout_ms": 5000, "keepalive_ttl_fraction": 1.0 / 3.0, "keepalive_jitter": 0.10}
TOLERANCE = 1e-12
SECTION = "## Names across the SDKs"
READMES = {sdk: REPO / "sdk" / sdk / "README.md" for sdk in ("c", "python", "go")}
GO_RUN_TIMEOUT = 600  # seconds: the first run compiles the SDK and its cgo dependency


# -- the defaults ----------------------------------------------------------


def python_defaults():
    return {
        "default_timeout_ms": garbagetruck.DEFAULT_TIMEOUT * 1000.0,
        "keepalive_ttl_fraction": garbagetruck.KEEPALIVE_TTL_FRACTION,
        "keepalive_jitter": garbagetruck.KEEPALIVE_JITTER,
    }


def parse_defaults(who, stdout):
    """The one JSON line a program printed, checked for the three keys."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"{who} printed {len(lines)} lines, expected one JSON line:\n{stdout}"
    values = json.loads(lines[0])
    assert isinstance(values, dict) and set(values) == set(KEYS), f"{who}: {values!r}"
    for key in KEYS:
        assert isinstance(values[key], (int, float)) and not isinstance(values[key], bool), f"{who}: {key}"
    return values


def c_defaults():
    build = os.environ.get("GT_BUILD_DIR")
    if not build:
        pytest.skip("GT_BUILD_DIR is not set: the C SDK's defaults come from "
                    "$GT_BUILD_DIR/tests/sdk_defaults/gt_print_sdk_defaults")
    program = Path(build) / "tests" / "sdk_defaults" / "gt_print_sdk_defaults"
    assert program.is_file() and os.access(program, os.X_OK), f"{program} is missing (GT_BUILD_DIR={build})"
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"{program} exited {run.returncode}: {run.stderr}"
    return parse_defaults("gt_print_sdk_defaults", run.stdout)


def go_binary():
    found = shutil.which("go")
    if found is None and os.access("/usr/local/go/bin/go", os.X_OK):
        found = "/usr/local/go/bin/go"
    return found


def go_defaults():
    go = go_binary()
    if go is None:
        pytest.skip("go is not installed: the Go SDK's defaults come from `go run ./internal/printdefaults`")
    run = subprocess.run([go, "run", "./internal/printdefaults"], cwd=REPO / "sdk" / "go",
                         capture_output=True, text=True, timeout=GO_RUN_TIMEOUT)
    assert run.returncode == 0, f"go run ./internal/printdefaults exited {run.returncode}: {run.stderr}"
    return parse_defaults("go run ./internal/printdefaults", run.stdout)


def assert_same(name, got, expected):
    for key in KEYS:
        assert abs(float(got[key]) - float(expected[key])) <= TOLERANCE, (
            f"{key}: {name} has {got[key]!r}, Python {expected[key]!r}")


def test_python_exports_the_agreed_defaults():
    assert_same("issue 15", python_defaults(), AGREED)
    assert garbagetruck.DEFAULT_TIMEOUT == 5.0
    # ... and uses them.
    assert inspect.signature(Client).parameters["timeout"].default == garbagetruck.DEFAULT_TIMEOUT
    assert inspect.signature(AsyncClient).parameters["timeout"].default == garbagetruck.DEFAULT_TIMEOUT
    assert inspect.signature(garbagetruck.Subscriber).parameters["timeout"].default == garbagetruck.DEFAULT_TIMEOUT


def test_c_defaults_agree_with_python():
    assert_same("the C SDK", c_defaults(), python_defaults())


def test_go_defaults_agree_with_python():
    assert_same("the Go SDK", go_defaults(), python_defaults())


# -- the names table -------------------------------------------------------


def section_tables(sdk):
    """The table lines (those starting with '|') of the README's section
    "Names across the SDKs", up to the next '## ' heading."""
    lines = READMES[sdk].read_text(encoding="utf-8").splitlines()
    assert lines.count(SECTION) == 1, f"{READMES[sdk]}: expected one '{SECTION}' heading"
    start = lines.index(SECTION) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line.rstrip() for line in lines[start:end] if line.startswith("|")]


def table_rows(lines, first_header_cell):
    """The rows (lists of cells) of the table whose header starts with
    ``first_header_cell``; the separator line is skipped."""
    rows, inside = [], False
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == first_header_cell:
            inside = True
            header = cells
            continue
        if inside and set("".join(cells)) <= set("-: "):
            continue
        if inside and cells[0] in ("operation", "default"):
            break  # the next table
        if inside:
            assert len(cells) == len(header), f"row {line!r} does not have the header's {len(header)} cells"
            rows.append(dict(zip(header, cells)))
    assert rows, f"no table with header {first_header_cell!r}"
    return rows


def names(cell):
    """The identifiers written in backquotes in a cell (`shard=` is not one)."""
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", cell)


def test_the_names_section_is_the_same_in_the_three_readmes():
    tables = {sdk: section_tables(sdk) for sdk in READMES}
    assert tables["python"], f"{READMES['python']}: no table in '{SECTION}'"
    for sdk in ("c", "go"):
        assert tables[sdk] == tables["python"], (
            f"the tables of '{SECTION}' differ between sdk/{sdk}/README.md and sdk/python/README.md")
    operations = table_rows(tables["python"], "operation")
    defaults = table_rows(tables["python"], "default")
    assert [list(row) for row in operations[:1]] == [["operation", "C", "Python", "Go"]]
    assert len(defaults) == 3
    for row in operations + defaults:
        for sdk in ("C", "Python", "Go"):
            assert names(row[sdk]), f"no name for {sdk} in {row}"


def test_the_table_states_the_defaults():
    defaults = {names(row["Python"])[0]: row["value"] for row in table_rows(section_tables("python"), "default")}
    assert defaults["DEFAULT_TIMEOUT"] == f"{garbagetruck.DEFAULT_TIMEOUT:g} s"
    assert garbagetruck.KEEPALIVE_TTL_FRACTION == 1 / 3 and defaults["KEEPALIVE_TTL_FRACTION"].startswith("a third")
    assert defaults["KEEPALIVE_JITTER"].startswith(f"±{garbagetruck.KEEPALIVE_JITTER * 100:g} %")


def all_table_names(column):
    lines = section_tables("python")
    rows = table_rows(lines, "operation") + table_rows(lines, "default")
    return sorted({name for row in rows for name in names(row[column])})


def python_has(name):
    if "." in name:  # a module's function: webhook.sign
        module, attr = name.rsplit(".", 1)
        return hasattr(importlib.import_module(f"garbagetruck.{module}"), attr)
    if hasattr(Client, name):
        return hasattr(AsyncClient, name)  # the same surface, with coroutines
    return hasattr(garbagetruck, name)


def test_every_python_name_exists():
    missing = [name for name in all_table_names("Python") if not python_has(name)]
    assert not missing, f"not in the Python SDK (Client and AsyncClient, or garbagetruck): {missing}"


def test_every_go_name_exists():
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "sdk" / "go").glob("*.go")
                       if not p.name.endswith("_test.go"))
    missing = [name for name in all_table_names("Go")
               if not re.search(rf"^func (\(c \*Client\) )?{name}\(|^\s*{name}\b.*=|^type {name}\b", source, re.M)]
    assert not missing, f"not declared in sdk/go: {missing}"


def test_every_c_name_exists():
    headers = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "sdk" / "c").glob("*.h"))
    missing = [name for name in all_table_names("C") if not re.search(rf"\b{name}\b", headers)]
    assert not missing, f"not in sdk/c's headers: {missing}"
