"""remediate-drift: restore a control plane's hand-edited static pod images to kubeadm's
kubernetesVersion before any hop.

kubeadm reads the cluster version from `/version`, so a hand-edited image misleads its version
checks; restoring the manifest before kubeadm runs makes the kubelet restart the static pod at
the version kubeadm-config records."""

from __future__ import annotations

import re
from collections.abc import Sequence

from kubehop.core.steps.base import STATIC_POD_KEYS, Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import Command, ExpectKey, ExpectValue, ParamValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.REMEDIATE_DRIFT
EXPECT_KEYS = frozenset(STATIC_POD_KEYS)
LOCAL = False
MANIFEST_DIR = "/etc/kubernetes/manifests"


def _bre(text: str) -> str:
    """`text` as a literal in a sed basic regular expression delimited by `#`."""
    return re.sub(r"([.\[\]*^$\\#])", r"\\\1", text)


def restore_image_command(component: str, image: str, tag: str) -> Command:
    """`sed -i` the manifest of `component` back from `image` to the same repository at `tag`."""
    new_image = image.rsplit(":", 1)[0] + ":" + tag if ":" in image.rsplit("/", 1)[-1] else (
        f"{image}:{tag}")
    replacement = new_image.replace("\\", "\\\\").replace("&", "\\&").replace("#", "\\#")
    script = f"s#{_bre(image)}#{replacement}#"
    return Command(("sed", "-i", script, f"{MANIFEST_DIR}/{component}.yaml"))


def description(components: Sequence[str], cluster: KubeVersion) -> str:
    return (f"restore {', '.join(components)} to {cluster} (the manifests were edited by hand; "
            f"kubeadm reads the version from /version)")


def expect(components: Sequence[str], cluster: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey(c): str(cluster) for c in components}


def params(components: Sequence[str], cluster: KubeVersion) -> dict[str, ParamValue]:
    return {"components": tuple(components), "version": str(cluster)}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    for c in step.params.get("components", ()):  # type: ignore[union-attr]
        n.images[str(c)] = hop
    return sim.check_global()


def cost(step: Step, est: Estimate) -> float:
    return est.costs.static_pod_restart * max(1, len(step.commands))
