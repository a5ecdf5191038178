"""`kubehop lab`: the simulated cluster. `lab scenarios` lists the built-ins, `lab validate FILE`
checks a scenario file, `lab up` serves one in the foreground.

The lab modules are imported inside the commands, so `kubehop --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.context import host_key_option
from kubehop.cli.output import MACHINE_FORMATS, emit, make_console, make_table

if TYPE_CHECKING:
    from kubehop.lab.lab import Lab
    from kubehop.lab.scenarios import Scenario

SCENARIO_HELP = (
    "A built-in scenario name (see `kubehop lab scenarios`) or a scenario file. Built-ins "
    "with parameters take them after a colon: large:nodes=5000,pods=30."
)


@click.group("lab")
def lab() -> None:
    """The lab: a simulated kubeadm cluster to try, test and benchmark kubehop on.

    \b
    Scenarios describe the cluster (DESIGN "Scenario files (v1)"): nodes, versions,
    packages and repositories, workloads, PDBs, CloudNativePG clusters, faults.
    Built-ins: `kubehop lab scenarios`; parameters: `large:nodes=5000,pods=30`.
    """


def scenario_summary(sc: Scenario) -> dict[str, Any]:
    """The machine-readable row of one scenario."""
    from kubehop.lab.scenarios import params

    defaults = {p.name: p.default for p in params.PARAMETERS.get(sc.name, ())}
    return {"name": sc.name, "nodes": sc.node_count,
            "kubernetesVersion": sc.cluster.kubernetes_version,
            "description": sc.description, "parameters": dict(sc.parameters) or defaults or None}


@lab.command("scenarios")
@click.option("-o", "--output", type=click.Choice(["table", *MACHINE_FORMATS]), default="table",
              show_default=True, help="Output format.")
def scenarios(output: str) -> None:
    """List the built-in lab scenarios.

    \b
    NODES and VERSION are the defaults; a parameterised built-in (large) is sized with
    NAME:key=value,...  e.g. `kubehop lab up --scenario large:nodes=5000,pods=30`
    (large: nodes in all, 3 of them control plane, default 1000; pods: application
    pods per worker, default 30).
    """
    from kubehop.lab.scenarios import builtin_names, load_scenario

    rows = [scenario_summary(load_scenario(name)) for name in builtin_names()]
    if output in MACHINE_FORMATS:
        emit({"scenarios": rows}, output)
        return
    table = make_table(
        ["name", "nodes", "version", "description"],
        [[r["name"], str(r["nodes"]), r["kubernetesVersion"], r["description"]] for r in rows],
    )
    table.columns[-1].no_wrap = False  # a narrow terminal wraps the description, not the rest
    make_console().print(table)


@lab.command("validate")
@click.argument("scenario", metavar="FILE")
@click.option("-o", "--output", type=click.Choice(["text", *MACHINE_FORMATS]), default="text",
              show_default=True, help="text: one line; json/yaml: the scenario with every "
                                      "default filled in.")
def validate(scenario: str, output: str) -> None:
    """Check a scenario FILE (or built-in name): exit 0 if valid, 2 with one line naming the
    file, the field and the problem if not."""
    from kubehop.lab.scenarios import load_scenario

    sc = load_scenario(scenario)
    if output in MACHINE_FORMATS:
        emit(sc.to_dict(), output)
        return
    count = sc.node_count
    click.echo(f"{scenario}: valid scenario {sc.name} ({count} node{'s' if count != 1 else ''})")


def default_state_dir(sc: Scenario) -> Path:
    """`$XDG_STATE_HOME/kubehop/lab/<scenario>` ($XDG_STATE_HOME defaults to ~/.local/state);
    a parameterised built-in gets its own (`large-nodes50-pods30`)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    suffix = "".join(f"-{k}{v}" for k, v in sorted(sc.parameters.items()))
    return Path(base) / "kubehop" / "lab" / f"{sc.name}{suffix}"


@lab.command("up")
@click.option("--scenario", "scenario_name", default="oldversion", show_default=True,
              metavar="NAME|FILE", help=SCENARIO_HELP)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the kubeconfig, SSH inventory, keys and node state go "
                   "(default: $XDG_STATE_HOME/kubehop/lab/SCENARIO, XDG_STATE_HOME defaulting "
                   "to ~/.local/state).")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, metavar="F",
              help="Real seconds per lab second: 0.05 runs 20x faster than life.")
@click.option("--http", is_flag=True, help="Serve the API over plain HTTP instead of HTTPS.")
@click.option("--reset", is_flag=True,
              help="Start the nodes afresh: drop node state an earlier lab left in the state "
                   "directory.")
def up(scenario_name: str, state_dir: Path | None, time_scale: float, http: bool,
       reset: bool) -> None:
    """Run a lab cluster in the foreground until Ctrl-C (or SIGTERM).

    \b
    Serves the Kubernetes API on loopback (one endpoint per control-plane node, plus a
    load balancer in HA scenarios), one SSH endpoint per node, and the lab history at
    /lab/v1/history; writes STATE_DIR/kubeconfig and STATE_DIR/inventory.yaml and prints
    the `export` lines to use them. A state directory is reused by the next `lab up`:
    the nodes continue where they were left (--reset starts them afresh).
    """
    import asyncio

    from kubehop.lab.lab import Lab
    from kubehop.lab.scenarios import load_scenario

    sc = load_scenario(scenario_name)
    raise_open_files_limit()  # one listening SSH socket per node, plus clients
    directory = state_dir or default_state_dir(sc)
    the_lab = Lab(sc, state_dir=directory, time_scale=time_scale, tls=not http, reset=reset)
    click.echo(f"kubehop lab: starting scenario {sc.name} ({sc.node_count} nodes) ...", err=True)
    asyncio.run(_serve(the_lab))
    click.echo("kubehop lab: stopped", err=True)


def raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one (a 1,000-node lab needs more than the
    usual 1,024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(the_lab: Lab) -> None:
    """Start the lab, print how to use it, serve until SIGINT/SIGTERM, stop it."""
    import asyncio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await the_lab.start()
        if not stop.is_set():
            click.echo(usage_text(the_lab))
        await stop.wait()
    finally:
        await the_lab.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)


def usage_text(the_lab: Lab) -> str:
    """What `lab up` prints once serving: endpoints, export lines, example commands."""
    q = shlex.quote
    scale = the_lab.time_scale
    pace = "as fast as life" if scale == 1 else (
        f"{1 / scale:g}x faster than life" if scale < 1 else f"{scale:g}x slower than life")
    nodes = the_lab.scenario.node_count
    lines = [f"Lab {the_lab.spec.name} is up: {nodes} nodes, time scale {scale:g} "
             f"({pace}).",
             f"  state dir    {the_lab.state_dir}",
             f"  API server   {the_lab.url}"
             + ("  (load balancer)" if the_lab.load_balancer is not None else "")]
    for node, url in the_lab.endpoints.items():
        lines.append(f"  apiserver    {url}  ({node})")
    lines.append(f"  history      {the_lab.history_url}")
    if the_lab.reused_nodes:
        lines.append("  nodes        continue from an earlier lab's state (--reset starts afresh)")
    for fault in the_lab.unsimulated_faults:
        lines.append(f"  warning      fault not simulated yet: {fault}")
    node = the_lab.control_planes[0]
    ssh = (f"ssh -i {q(str(the_lab.client_key_path))} -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={q(str(the_lab.known_hosts_path))} "
           f"-p {the_lab.ssh_ports[node]} {the_lab.ssh_user}@127.0.0.1 'kubeadm version -o short'")
    curl = "curl -s"
    if the_lab.tls_files is not None:
        curl += f" --cacert {q(str(the_lab.tls_files.ca_cert))}"
    lines += [
        "",
        "Use it (in another shell):",
        f"  export KUBECONFIG={q(str(the_lab.kubeconfig_path))}",
        f"  export KUBEHOP_SSH_INVENTORY={q(str(the_lab.inventory_path))}",
        "  kubectl get nodes",
        f"  {ssh}    # node {node}",
        f"  {curl} {the_lab.history_url}",
        "",
        "Ctrl-C stops the lab.",
    ]
    return "\n".join(lines)


def snapshot_yaml(document: dict[str, Any], notes: list[str]) -> str:
    """The scenario as YAML (libyaml's emitter: a 150,000-pod snapshot in seconds), the notes
    on what it could not reproduce as comments on top."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    head = "".join(f"# snapshot: {n}\n" for n in notes)
    return head + yaml.dump(document, Dumper=dumper, sort_keys=False, width=100,
                            default_flow_style=None)


def read_live_cluster() -> Any:
    """The cluster the global options name, as `kubehop.shell.observe.snapshot.read_cluster`
    reads it (node facts over SSH when an inventory is given)."""
    from kubehop.cli.context import make_session, run_session

    return run_session(make_session(), lambda session: session.read_cluster())


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (the mapping file holds the key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@lab.command("snapshot")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the scenario to FILE (default: standard output).")
@click.option("--anonymize", is_flag=True,
              help="Replace namespace, workload and node names, label values and images by "
                   "keyed hashes; the key and the mapping go to FILE.names.yaml (mode 600) "
                   "only. Needs -o.")
@click.option("--max-pods-per-node", type=click.IntRange(min=1), metavar="N",
              help="Sample: keep at most N pods per node besides DaemonSet pods (default: "
                   "every pod).")
@click.option("--name", "scenario_name", default="snapshot", show_default=True,
              help="The scenario's name.")
@host_key_option
def snapshot(out: Path | None, anonymize: bool, max_pods_per_node: int | None,
             scenario_name: str) -> None:
    """Write the live cluster as a lab scenario: `kubehop lab up --scenario FILE` (or
    `kubehop rehearse --snapshot FILE`) then runs a twin of it.

    \b
    Kept: nodes (roles, scheduling labels, taints, allocatable, OS, kernel, runtime,
    versions, cordons), control-plane images per node, kubeadm's version, add-ons,
    with --ssh-inventory packages, repository minor, holds and host hazards;
    Deployments, StatefulSets, DaemonSets, bare pods and CloudNativePG clusters with
    where each replica runs, requests, emptyDir, node selectors, tolerations and PDBs;
    Helm releases as chart and object API versions only. Never Secret data, ConfigMap
    contents, environment values or credentials.
    """
    import secrets

    from kubehop.model.errors import UsageError
    from kubehop.shell.observe.snapshot import build_snapshot, names_document

    if anonymize and out is None:
        raise UsageError("--anonymize needs -o FILE: the name mapping and its key are written "
                         "beside it (FILE.names.yaml)")
    facts = read_live_cluster()
    key = secrets.token_bytes(32) if anonymize else None
    snap = build_snapshot(facts, name=scenario_name, anonymize_key=key,
                          max_pods_per_node=max_pods_per_node)
    text = snapshot_yaml(snap.document, snap.notes)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        if key is not None:
            import yaml

            names = out.with_name(out.name + ".names.yaml")
            write_private(names, yaml.safe_dump(names_document(snap, key), sort_keys=False))
            click.echo(f"kubehop lab snapshot: names and key in {names} (keep it private)",
                       err=True)
        count = len(snap.document["nodes"])
        click.echo(f"kubehop lab snapshot: {out}: {count} node{'s' * (count != 1)}, "
                   f"{len(snap.document['workloads'])} workloads", err=True)
    for note in snap.notes:
        click.echo(f"kubehop lab snapshot: {note}", err=True)
