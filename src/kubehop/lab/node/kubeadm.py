"""`kubeadm` on a simulated node: `version`, `upgrade plan|apply|node`, `config images list`.

The installed kubeadm package decides the binary's version and its dialect: output follows
kubeadm's own texts (1.28-1.31 `[upgrade/successful] SUCCESS! Your cluster was upgraded to …`,
the phased 1.32+ `[upgrade] SUCCESS! A control plane node of your cluster was upgraded to …`).
The cluster version of the policy check is `/version` of the apiserver the node's kubeconfig
reaches, i.e. the running kube-apiserver static pod, so a hand-edited manifest misleads kubeadm
as it does for real. `apply` and `node` rewrite manifests one component at a time (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler) with backups, wait for the kubelet to
run each (5 min lab timeout, rollback of the manifests moved so far on failure, exit 1 with
kubeadm's error), upload kubeadm-config / kubelet-config, write
/var/lib/kubelet/config.yaml, and upgrade CoreDNS and kube-proxy only once every kube-apiserver
runs the new image. `plan` and `apply` first run kubeadm's cluster health checks; the
`kubeadm-createjob-fails` fault makes the CreateJob one fail (after its 15 s wait) the first
`times` runs on a node, as it does intermittently upstream (kubernetes/kubeadm#3282).
"""

from __future__ import annotations

import json
import weakref

from kubehop.lab.node import manifests as mf
from kubehop.lab.node.config import kube_version_of
from kubehop.lab.node.host import LabNode, Proc, Tool
from kubehop.lab.node.kubeadm_plan import plan_text
from kubehop.lab.node.kubeadm_policy import (
    SemverError,
    enforce_version_policies,
    format_forced_warning,
    format_policy_errors,
    parse_semantic,
)
from kubehop.lab.node.kubeadm_steps import (
    addons,
    set_config_version,
    upgrade_control_plane,
    write_kubelet_config,
)
from kubehop.lab.node.kubeadm_view import ApiserverUnreachable, ClusterView, kube
from kubehop.lab.node.system import CGROUP_ROOT, fs_type, installed, not_found
from kubehop.model.versions import KubeVersion, MinorVersion

STACK = "To see the stack trace of this error execute with --v=5 or higher\n"
BOOTSTRAP = [
    "Configured RBAC rules to allow Node Bootstrap tokens to get nodes",
    "Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get "
    "long term certificate credentials",
    "Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a "
    "Node Bootstrap Token",
    "Configured RBAC rules to allow certificate rotation for all node client certificates in the "
    "cluster",
]


class Opts:
    def __init__(self, args: list[str]) -> None:
        self.yes = self.force = self.dry_run = False
        self.etcd_upgrade = True
        self.ignore: set[str] = set()
        self.positional: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-y", "--yes"):
                self.yes = True
            elif a in ("-f", "--force"):
                self.force = True
            elif a == "--dry-run":
                self.dry_run = True
            elif a.startswith("--etcd-upgrade"):
                self.etcd_upgrade = not a.endswith("=false")
            elif a.startswith("--ignore-preflight-errors"):
                if "=" in a:
                    value = a.split("=", 1)[1]
                else:
                    value = args[i + 1] if i + 1 < len(args) else ""
                    i += 1
                self.ignore |= {v.strip().lower() for v in value.split(",")}
            elif a in ("--config", "--kubeconfig", "--patches", "-o", "--output") and "=" not in a:
                i += 1
            elif not a.startswith("-"):
                self.positional.append(a)
            i += 1


def _not_semantic(version: str) -> bool:
    """Whether Go's `version.ParseSemantic` refuses what kubehop's parser accepted."""
    try:
        parse_semantic(version)
    except SemverError:
        return True
    return False


def _fail(p: Proc, message: str, code: int = 1) -> int:
    p.err(message.rstrip("\n") + "\n" + STACK)
    return code


def _version_info(v: KubeVersion) -> dict[str, str]:
    return {"major": str(v.major), "minor": str(v.minor), "gitVersion": str(v),
            "gitCommit": "8a4a6f8a4b3e0b3a1c1b6e8f0e5d4c3b2a1f0e9d", "gitTreeState": "clean",
            "buildDate": "2024-04-16T15:03:34Z", "goVersion": "go1.22.2", "compiler": "gc",
            "platform": "linux/amd64"}


PREFLIGHT = "[preflight] Running pre-flight checks.\n"
MAKING_SURE = "[upgrade/config] Making sure the configuration is correct:\n"
READING = "[upgrade/config] Reading configuration from the cluster...\n"
FYI = ("[upgrade/config] FYI: You can look at this config file with 'kubectl -n kube-system "
       "get cm kubeadm-config -o yaml'\n")
READING_131 = ("[upgrade/config] Reading configuration from the \"kubeadm-config\" ConfigMap in "
               "namespace \"kube-system\"...\n[upgrade/config] Use 'kubeadm init phase "
               "upload-config --config your-config-file' to re-upload it.\n")


def _preamble(v: KubeVersion) -> str:
    """The first lines of plan/apply, which moved around between releases."""
    if v.minor_version >= MinorVersion(1, 31):
        return PREFLIGHT + READING_131
    if v.minor_version >= MinorVersion(1, 30):
        return MAKING_SURE + PREFLIGHT + READING + FYI
    return MAKING_SURE + READING + FYI + PREFLIGHT


def _client_error(p: Proc, conf: str) -> int | None:
    """kubeadm's first step: load the kubeconfig (missing on workers, 0600 for non-root)."""
    path = f"/etc/kubernetes/{conf}"
    if not p.host.fs.exists(path):
        return _fail(p, f'couldn\'t create a Kubernetes client from file "{path}": failed to load '
                        f"admin kubeconfig: open {path}: no such file or directory")
    if not p.root:
        return _fail(p, f'couldn\'t create a Kubernetes client from file "{path}": failed to load '
                        f"admin kubeconfig: open {path}: permission denied")
    return None


# Fault `kubeadm-createjob-fails`: how many CreateJob checks each node's kubeadm ran so far.
_CREATE_JOB_RUNS: weakref.WeakKeyDictionary[LabNode, int] = weakref.WeakKeyDictionary()
CREATE_JOB_TIMEOUT = 15.0  # lab seconds kubeadm waits for its health-check Job


def _create_job_fails(host: LabNode) -> bool:
    """Whether this CreateJob check fails: the `kubeadm-createjob-fails` fault fails the first
    `times` (default 1; `always`: every one) on its node."""
    options = host.cluster.fault_options.get(("kubeadm-createjob-fails", host.name))
    if not options:
        return False
    runs = _CREATE_JOB_RUNS[host] = _CREATE_JOB_RUNS.get(host, 0) + 1
    times = [o.get("times") or "1" for o in options]
    if "always" in times:
        return True
    return runs <= sum(int(t) for t in times if t.isdigit())


async def _health(p: Proc, view: ClusterView, opts: Opts) -> int | None:
    """kubeadm's CheckClusterHealth (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/
    health.go): CreateJob (a Job in kube-system that must complete within 15 s),
    ControlPlaneNodesReady, StaticPodManifest; each can be ignored by name."""
    problems = []
    if not ({"createjob", "all"} & opts.ignore) and _create_job_fails(p.host):
        await p.host.sleep(CREATE_JOB_TIMEOUT)
        problems.append('\t[ERROR CreateJob]: Job "upgrade-health-check" in the namespace '
                        '"kube-system" did not complete in 15s: no condition of type Complete\n')
    not_ready = view.not_ready_control_planes()
    if not_ready and not ({"controlplanenodesready", "all"} & opts.ignore):
        problems.append("\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in "
                        f"the cluster: [{' '.join(not_ready)}]\n")
    paths = [mf.manifest_path(c) for c in mf.COMPONENTS]
    missing = [path for path in paths if not p.host.fs.exists(path)]
    if missing and not ({"staticpodmanifest", "all"} & opts.ignore):
        problems.append(
            "\t[ERROR StaticPodManifest]: The control plane seems to be Static Pod-hosted, but "
            "some of the manifests don't seem to exist on disk. This probably means you're "
            "running 'kubeadm upgrade' on a remote machine, which is not supported for a Static "
            f"Pod-hosted cluster. Manifest files not found: [{' '.join(missing)}]\n")
    if not problems:
        return None
    return _fail(p, "[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n"
                 + "".join(problems) + "[preflight] If you know what you are doing, you can make a "
                 "check non-fatal with `--ignore-preflight-errors=...`", 2)


async def apply(p: Proc, opts: Opts, kubeadm: KubeVersion) -> int:
    host = p.host
    phased = kubeadm.minor_version >= MinorVersion(1, 32)
    if (e := _client_error(p, "admin.conf")) is not None:
        return e
    if not opts.positional:
        return _fail(p, "[upgrade/version] FATAL: missing one or more required arguments. "
                        "Required arguments: [version]")
    target = kube(opts.positional[0])
    if target is None or _not_semantic(target.full):
        return _fail(p, f"[upgrade/version] FATAL: couldn't parse version "
                        f"\"{opts.positional[0]}\": unable to parse")
    p.out(_preamble(kubeadm))
    try:
        view = ClusterView(host)
    except ApiserverUnreachable as e:
        return _fail(p, f"[upgrade/init config] FATAL: failed to get config map: {e}")
    p.out("[upgrade] Running cluster health checks\n")
    if (e := await _health(p, view, opts)) is not None:
        return e
    verb = ("[upgrade/preflight] You have chosen to upgrade the cluster version to" if phased
            else "[upgrade/version] You have chosen to change the cluster version to")
    p.out(f"{verb} \"{target}\"\n")
    cluster = view.cluster_version()
    p.out(f"[upgrade/versions] Cluster version: {cluster}\n"
          f"[upgrade/versions] kubeadm version: {kubeadm}\n")
    errors = enforce_version_policies(target.full, cluster, str(kubeadm),
                                      list(view.kubelet_versions().values()))
    message = format_policy_errors(errors, force=opts.force, phased=phased)
    if message:
        prefix = "error execution phase preflight: " if phased else ""
        return _fail(p, f"{prefix}[upgrade/version] FATAL: {message}")
    if (warning := format_forced_warning(errors)) and opts.force:
        p.out(warning)
    if not opts.yes and not opts.dry_run:
        p.out("[upgrade] Are you sure you want to proceed? [y/N]: ")
        answer = (await p.read_stdin()).strip().lower()
        if answer not in ("y", "yes"):
            prefix = "error execution phase preflight: " if phased else ""
            return _fail(p, f"{prefix}won't proceed; the user didn't answer (Y|n) in order to "
                            "continue")
    stage = "[upgrade/preflight]" if phased else "[upgrade/prepull]"
    p.out(f"{stage} Pulling images required for setting up a Kubernetes cluster\n"
          f"{stage} This might take a minute or two, depending on the speed of your internet "
          f"connection\n{stage} You can also perform this action beforehand using 'kubeadm "
          "config images pull'\n")
    if opts.dry_run:
        p.out("[dryrun] Finished dryrunning successfully!\n")
        return 0
    p.out(("[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version"
           if phased else "[upgrade/apply] Upgrading your Static Pod-hosted control plane to "
           "version") + f" \"{target}\" (timeout: 5m0s)...\n")
    failure = await upgrade_control_plane(p, view, target, etcd_upgrade=opts.etcd_upgrade,
                                          phased=phased, kubeadm=kubeadm)
    if failure:
        prefix = ("error execution phase control-plane: couldn't complete the static pod upgrade: "
                  if phased else "[upgrade/apply] FATAL: ")
        return _fail(p, prefix + failure)
    if phased:
        p.out("[upgrade/control-plane] The control plane instance for this node was successfully "
              "upgraded!\n")
    p.out("[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in "
          "the \"kube-system\" Namespace\n[kubelet] Creating a ConfigMap \"kubelet-config\" in "
          "namespace kube-system with the configuration for the kubelets in the cluster\n")
    set_config_version(host, str(target))
    write_kubelet_config(p, str(target))
    if phased:
        p.out("[upgrade/kubelet-config] The kubelet configuration for this node was successfully "
              "upgraded!\n[upgrade/bootstrap-token] Configuring bootstrap token and cluster-info "
              "RBAC rules\n")
    p.out("".join(f"[bootstrap-token] {line}\n" for line in BOOTSTRAP))
    addons(p, view, target, kubeadm, phased)
    if phased:
        p.out(f"\n[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "
              f"\"{target}\".\n\n[upgrade] Now please proceed with upgrading the rest of the nodes "
              "by following the right order.\n")
    else:
        p.out(f"\n[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{target}\". "
              "Enjoy!\n\n[upgrade/kubelet] Now that your control plane is upgraded, please "
              "proceed with upgrading your kubelets if you haven't already done so.\n")
    return 0


def system_verification(p: Proc, kubeadm: KubeVersion) -> None:
    """`upgrade node`'s preflight after the root check: SystemVerification, with no kubelet
    or kubeadm version check at all (kubernetes/kubernetes cmd/kubeadm/app/cmd/phases/upgrade/
    node/preflight.go: RunRootCheckOnly, then RunUpgradeChecks = SystemVerificationCheck). Its
    cgroup validator warns on a cgroup v1 host from kubeadm 1.31 (kubernetes/system-validators
    #38, validators/cgroup_validator_linux.go; KEP-4569)."""
    if kubeadm.minor_version >= MinorVersion(1, 31) and \
            fs_type(p.host, CGROUP_ROOT) != "cgroup2fs":
        p.err("\t[WARNING SystemVerification]: cgroups v1 support is in maintenance mode, "
              "please migrate to cgroups v2\n")


async def node(p: Proc, opts: Opts, kubeadm: KubeVersion) -> int:
    host = p.host
    if (e := _client_error(p, "kubelet.conf")) is not None:
        return e
    p.out("[upgrade] Reading configuration from the cluster...\n[upgrade] FYI: You can look at "
          "this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'\n")
    try:
        view = ClusterView(host)
    except ApiserverUnreachable as e:
        return _fail(p, f"unable to fetch the kubeadm-config ConfigMap: {e}")
    version = kube(view.config_version() or "")
    if version is None:
        return _fail(p, "unable to fetch the kubeadm-config ConfigMap: configmaps "
                        "\"kubeadm-config\" not found")
    p.out("[preflight] Running pre-flight checks\n")
    system_verification(p, kubeadm)
    control_plane = host.fs.exists(mf.manifest_path("kube-apiserver"))
    if control_plane:
        p.out("[preflight] Pulling images required for setting up a Kubernetes cluster\n[preflight]"
              " This might take a minute or two, depending on the speed of your internet "
              "connection\n[preflight] You can also perform this action beforehand using 'kubeadm "
              f"config images pull'\n[upgrade] Upgrading your Static Pod-hosted control plane "
              f"instance to version \"{version}\"...\n")
        if opts.dry_run:
            return 0
        failure = await upgrade_control_plane(p, view, version, etcd_upgrade=opts.etcd_upgrade,
                                              phased=False, kubeadm=kubeadm)
        if failure:
            return _fail(p, "error execution phase control-plane: couldn't complete the static "
                            f"pod upgrade: {failure}")
        p.out("[upgrade] The control plane instance for this node was successfully updated!\n")
    else:
        p.out("[preflight] Skipping prepull. Not a control plane node.\n"
              "[upgrade] Skipping phase. Not a control plane node.\n")
    if opts.dry_run:
        return 0
    write_kubelet_config(p, str(version))
    p.out("[upgrade] The configuration for this node was successfully updated!\n"
          "[upgrade] Now you should go ahead and upgrade the kubelet package using your package "
          "manager.\n")
    if control_plane:
        addons(p, view, version, kubeadm, kubeadm.minor_version >= MinorVersion(1, 32))
    return 0


async def kubeadm(p: Proc) -> int:
    if not installed(p, "kubeadm"):
        return not_found(p)
    version = kube(kube_version_of(p.host.db.version("kubeadm")) or "")
    if version is None:
        return _fail(p, "kubeadm: broken installation")
    args = p.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        p.out("Usage:\n  kubeadm [command]\n\nAvailable Commands:\n  certs, completion, config, "
              "help, init, join, kubeconfig, reset, token, upgrade, version\n")
        return 0
    if args[0] == "version":
        opts = Opts(args[1:])
        output = next((a.split("=", 1)[1] for a in args if a.startswith(("-o=", "--output="))),
                      args[args.index("-o") + 1] if "-o" in args[:-1] else "")
        info = _version_info(version)
        if output == "short":
            p.out(f"{version}\n")
        elif output == "json":
            p.out(json.dumps({"clientVersion": info}, indent=2) + "\n")
        elif output == "yaml":
            p.out("clientVersion:\n" + "".join(f"  {k}: {v}\n" for k, v in sorted(info.items())))
        elif output:
            return _fail(p, f'error: invalid output format: {output}')
        else:
            fields = ", ".join(f'{k[0].upper()}{k[1:]}:"{v}"' for k, v in info.items())
            p.out(f"kubeadm version: &version.Info{{{fields}}}\n")
        del opts
        return 0
    if args[:3] == ["config", "images", "list"]:
        target = version
        for i, a in enumerate(args):
            if a.startswith("--kubernetes-version"):
                target = kube(a.split("=", 1)[1] if "=" in a else args[i + 1]) or version
        comps = p.host.data.kubeadm_components(version)
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
            p.out(f"registry.k8s.io/{c}:{target}\n")
        if comps:
            p.out(f"registry.k8s.io/coredns/coredns:{comps.coredns}\nregistry.k8s.io/pause:"
                  f"{comps.pause}\nregistry.k8s.io/etcd:{comps.etcd}\n")
        return 0
    if args[0] != "upgrade" or len(args) < 2:
        return _fail(p, f"unknown command \"{args[0]}\" for \"kubeadm\"")
    opts = Opts(args[2:])
    if args[1] == "plan":
        if (e := _client_error(p, "admin.conf")) is not None:
            return e
        p.out(_preamble(version))
        try:
            view = ClusterView(p.host)
        except ApiserverUnreachable as e:
            return _fail(p, f"[upgrade/init config] FATAL: failed to get config map: {e}")
        p.out("[upgrade] Running cluster health checks\n")
        if (e := await _health(p, view, opts)) is not None:
            return e
        offline = kube(opts.positional[0]) if opts.positional else None
        try:
            p.out(plan_text(view, p.host.data, version, offline))
        except ValueError as e:
            return _fail(p, f"[upgrade/versions] FATAL: {e}")
        return 0
    if args[1] == "apply":
        return await apply(p, opts, version)
    if args[1] == "node":
        return await node(p, opts, version)
    if args[1] == "diff":
        return 0
    return _fail(p, f"unknown command \"{args[1]}\" for \"kubeadm upgrade\"")


TOOLS_KUBEADM: dict[str, Tool] = {"kubeadm": kubeadm}
