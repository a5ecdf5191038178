"""Moved to `kubehop.shell.steps.kubeadm_runner`; this name stays until its importers move."""

from kubehop.shell.steps.kubeadm_runner import RETRYING, KubeadmRunner

__all__ = ["RETRYING", "KubeadmRunner"]
