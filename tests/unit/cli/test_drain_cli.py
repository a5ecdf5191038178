"""`kubehop drain/cordon/uncordon` without a cluster: flags, durations, the lines people read."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from kubehop.cli.drain import drain, drain_options, format_event
from kubehop.cli.params import parse_duration
from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainOptions


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5h", 5400.0),
    ("250ms", 0.25), ("1m0.5s", 60.5),
])
def test_durations_as_kubectl_takes_them(text, seconds):
    assert parse_duration(text, "--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5q", "m5", "-1s", "1h x", "s"])
def test_bad_durations(text):
    with pytest.raises(click.BadParameter):
        parse_duration(text, "--timeout")


def options(*args: str) -> DrainOptions:
    return drain_options(drain.make_context("drain", ["w1", *args]).params)


def test_flags_map_to_kubectls_defaults_and_names():
    assert options() == DrainOptions()
    assert options("--ignore-daemonsets", "--delete-emptydir-data", "--force",
                   "--grace-period=10", "--timeout=2m", "--pod-selector", "app=web",
                   "--skip-wait-for-delete-timeout=30", "--disable-eviction",
                   "--switchover-timeout=30s") == DrainOptions(
        force=True, ignore_daemonsets=True, delete_emptydir_data=True, grace_period=10,
        timeout=120.0, pod_selector="app=web", skip_wait_for_delete_timeout=30,
        disable_eviction=True, switchover_timeout=30.0)
    assert options("--dry-run").dry_run
    assert options("--dry-run=server").dry_run
    assert not options("--dry-run=none").dry_run


@pytest.mark.parametrize("args", [
    ["--timeout", "5q"], ["--pod-selector", "app=web,"], ["--grace-period", "soon"],
    ["--dry-run=maybe"], [],
])
def test_bad_flags_exit_2_without_touching_a_cluster(args):
    result = subprocess.run([sys.executable, "-m", "kubehop", "--kubeconfig", "/nonexistent",
                             "drain", *(["w1"] if args else []), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("event", "line"), [
    (DrainEvent("cordoned", "w1"), ("node/w1 cordoned", False)),
    (DrainEvent("cordoned", "w1", dry_run=True), ("node/w1 cordoned (dry run)", False)),
    (DrainEvent("already-cordoned", "w1"), ("node/w1 already cordoned", False)),
    (DrainEvent("uncordoned", "w1"), ("node/w1 uncordoned", False)),
    (DrainEvent("warning", "w1", message="ignoring DaemonSet-managed Pods: a/b"),
     ("Warning: ignoring DaemonSet-managed Pods: a/b", True)),
    (DrainEvent("evicting", "w1", pod="web/a"), ("evicting pod web/a", False)),
    (DrainEvent("evicting", "w1", pod="web/a", dry_run=True),
     ("evicting pod web/a (dry run)", False)),
    (DrainEvent("evicted", "w1", pod="web/a"), ("pod/a evicted", False)),
    (DrainEvent("deleted", "w1", pod="web/a"), ("pod/a deleted", False)),
    (DrainEvent("blocked", "w1", pod="web/a", message="pdb web/x: why", pdb="web/x"),
     ("pod web/a blocked: pdb web/x: why", True)),
    (DrainEvent("waiting", "w1", pods=("web/a",), message="terminating"),
     ("waiting for 1 pod (web/a): terminating", True)),
    (DrainEvent("waiting", "w1", pods=tuple(f"web/p{i}" for i in range(7)), message="m"),
     ("waiting for 7 pods (web/p0, web/p1, web/p2, web/p3, web/p4 and 2 more): m", True)),
    (DrainEvent("drained", "w1"), ("node/w1 drained", False)),
])
def test_event_lines(event, line):
    assert format_event(event) == line
