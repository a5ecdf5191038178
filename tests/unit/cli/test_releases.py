"""`kubehop releases`: statuses on a date, machine output, stale-data warning, one-line errors."""

import json
from datetime import date

import pytest
import yaml

from kubehop.cli import app
from kubehop.cli.output import format_json, format_yaml, make_console, make_table, to_plain
from kubehop.cli.releases import resolve_today
from kubehop.model.errors import UsageError
from kubehop.model.releases import SupportStatus
from kubehop.model.versions import parse_kube_version, parse_minor_version
from tests.release_pins import EOL, GENERATED, MAINTENANCE, PLANNED, PLANNED_GA, latest

MINIMAL = """\
apiVersion: kubehop.dev/v1
kind: ReleaseData
generated: 2027-05-01
minors:
  "1.40":
    ga: 2027-04-20
    maintenanceStart: 2028-04-28
    eol: 2028-06-28
    patches: {v1.40.0: 2027-04-20, v1.40.1: 2027-04-30}
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


def run(capsys, *args):
    """Run `kubehop ARGS` through the real entry point: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_json_on_2026_11_25_lists_every_minor_with_its_status_and_warns_stale(capsys):
    code, out, err = run(capsys, "releases", "--today", "2026-11-25", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["dataDate"], doc["today"], doc["stale"]) == (str(GENERATED), "2026-11-25", True)
    minors = [r["minor"] for r in doc["releases"]]
    newest = int(PLANNED.split(".")[1])
    assert minors == [f"1.{n}" for n in range(newest, 18, -1)]  # newest first, down to 1.19
    status = {r["minor"]: r["status"] for r in doc["releases"]}
    assert all(status[f"1.{n}"] == "end-of-life" for n in range(19, 35))
    assert (status["1.35"], status["1.36"], status["1.37"]) == ("supported",) * 3
    by_minor = {r["minor"]: r for r in doc["releases"]}
    assert by_minor["1.34"]["eol"] == str(EOL["1.34"])
    assert by_minor["1.28"]["latestPatch"] == "v1.28.15"
    assert by_minor[PLANNED]["latestPatch"] is None  # announced, no patch in the data
    assert by_minor[PLANNED]["unsure"] is True
    assert set(by_minor["1.28"]) == {"minor", "ga", "maintenanceStart", "eol", "latestPatch",
                                     "status", "unsure", "note"}
    lines = err.strip().splitlines()
    assert len(lines) == 1
    age = (date(2026, 11, 25) - GENERATED).days
    assert lines[0].startswith(
        f"kubehop: warning: release data is {age} days old (from {GENERATED}")
    assert "--release-data FILE" in lines[0]


def test_yaml_has_the_same_shape_as_json(capsys):
    _, as_json, _ = run(capsys, "releases", "--today", "2026-11-25", "-o", "json")
    code, as_yaml, _ = run(capsys, "releases", "--today", "2026-11-25", "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_fresh_data_gives_no_warning(capsys):
    code, out, err = run(capsys, "releases", "--today", str(GENERATED), "-o", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["stale"] is False
    status = {r["minor"]: r["status"] for r in doc["releases"]}
    assert (status["1.37"], status["1.34"], status["1.33"]) == ("unreleased", "supported",
                                                              "end-of-life")


def test_latest_patch_is_the_newest_on_the_given_day(capsys):
    _, out, _ = run(capsys, "releases", "--today", "2024-04-16", "-o", "json")
    by_minor = {r["minor"]: r for r in json.loads(out)["releases"]}
    assert by_minor["1.28"]["latestPatch"] == "v1.28.9"
    assert by_minor["1.30"] == {**by_minor["1.30"], "status": "unreleased", "latestPatch": None}


def test_table_for_people(capsys):
    code, out, _ = run(capsys, "releases", "--today", "2026-11-25")
    assert code == 0
    assert "\x1b[" not in out  # NO_COLOR
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[:4] == [
        "MINOR  GA          MAINTENANCE  END OF LIFE  LATEST PATCH  STATUS",
        f"{PLANNED}*  {PLANNED_GA}  {MAINTENANCE[PLANNED]}   {EOL[PLANNED]}   {'<none>':<14}"
        "supported",
        f"1.36   2026-04-22  {MAINTENANCE['1.36']}   {EOL['1.36']}   {latest('1.36'):<14}supported",
        f"1.35   2025-12-17  {MAINTENANCE['1.35']}   {EOL['1.35']}   {latest('1.35'):<14}supported",
    ]
    assert "1.19   2020-08-26  2021-08-28   2021-10-28   v1.19.16      end-of-life" in lines
    assert any(line.startswith(f"* {PLANNED}: unsure: planned") for line in lines)


def test_a_user_data_file_replaces_the_shipped_data(capsys, tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL)
    code, out, err = run(capsys, "releases", "--today", "2027-05-02", "-o", "json",
                         "--release-data", str(path))
    assert (code, err) == (0, "")
    assert json.loads(out)["releases"] == [{
        "minor": "1.40", "ga": "2027-04-20", "maintenanceStart": "2028-04-28",
        "eol": "2028-06-28", "latestPatch": "v1.40.1", "status": "supported",
        "unsure": False, "note": None,
    }]
    monkeypatch.setenv("KUBEHOP_RELEASE_DATA", str(path))
    _, out, _ = run(capsys, "releases", "--today", "2027-05-02", "-o", "json")
    assert json.loads(out)["dataDate"] == "2027-05-01"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "missing.yaml: no such file"),
        ("apiVersion: [\n", "not valid YAML"),
        (MINIMAL + "extra: true\n", "unknown key 'extra'"),
        (MINIMAL.replace("eol: 2028-06-28", "eol: someday"), "eol: expected a date"),
    ],
)
def test_bad_release_data_exits_2_with_one_line(capsys, tmp_path, content, expected):
    path = tmp_path / "missing.yaml"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "releases", "--release-data", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"kubehop: release data {path}: ")
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad", ["tomorrow", "2026-13-01", "2026-11-31", "20261125"])
def test_bad_today_exits_2_with_one_line(capsys, bad):
    code, out, err = run(capsys, "releases", "--today", bad)
    assert (code, out) == (2, "")
    assert err == f"kubehop: bad --today {bad!r}: expected a date like 2026-11-25\n"


def test_bad_output_format_is_a_usage_error(capsys):
    code, _, err = run(capsys, "releases", "-o", "wide")
    assert code == 2
    assert "'wide' is not one of" in err


def test_resolve_today_defaults_to_the_system_date():
    assert resolve_today(None) == date.today()
    assert resolve_today("2026-11-25") == date(2026, 11, 25)
    with pytest.raises(UsageError):
        resolve_today("")


def test_to_plain_renders_dates_enums_versions_and_to_dict():
    class Row:
        def to_dict(self):
            return {"since": date(2026, 1, 2)}

    value = {"v": parse_kube_version("v1.28.9-eks-1"), "m": parse_minor_version("1.28"),
             "s": SupportStatus.END_OF_LIFE, "rows": (Row(),), 1: None}
    assert to_plain(value) == {"v": "v1.28.9", "m": "1.28", "s": "end-of-life",
                               "rows": [{"since": "2026-01-02"}], "1": None}
    assert json.loads(format_json(value)) == yaml.safe_load(format_yaml(value))
    with pytest.raises(TypeError):
        to_plain(object())


def test_tables_honour_no_color_and_show_none_for_missing_cells(tmp_path):
    with (tmp_path / "out.txt").open("w") as f:
        console = make_console(f, no_color=False, width=40)
        console.print(make_table(["name", "version"], [["w1", None]]))
    text = (tmp_path / "out.txt").read_text()
    assert [line.rstrip() for line in text.splitlines()] == ["NAME  VERSION", "w1    <none>"]
    assert make_console().no_color  # NO_COLOR=1 from the fixture


def test_a_command_loading_the_data_twice_warns_once(capsys, monkeypatch):
    """`upgrade` loads the release data to plan and again to check its plan."""
    import click

    from kubehop.cli.releases import load_release_data_checked

    @click.command("twice")
    def twice() -> None:
        for _ in range(2):
            load_release_data_checked(None, date(2026, 11, 25))

    monkeypatch.setitem(app.cli.commands, "twice", twice)
    code, _, err = run(capsys, "twice")
    assert code == 0
    assert err.count("release data is 95 days old") == 1
    code, _, err = run(capsys, "releases", "--today", "2026-11-25")
    assert err.count("release data is 95 days old") == 1
