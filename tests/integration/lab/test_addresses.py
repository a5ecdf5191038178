"""Every address the lab publishes is on loopback: nothing kubehop (or kubectl) might dial from
what the lab tells it leads off this machine."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest
import yaml

from kubehop.lab.lab import ADVERTISE, Lab
from kubehop.lab.scenarios import builtin_names

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def on_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    ip = ipaddress.ip_address(host)
    return ip in LOOPBACK if ip.version == 4 else ip == ipaddress.ip_address("::1")


def host_of(endpoint: str) -> str:
    return urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""


# `large` with enough nodes to cross the 250-address blocks, small enough to start quickly.
SCENARIOS = [name if name != "large" else "large:nodes=300,pods=1" for name in builtin_names()]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_published_address_is_loopback(scenario, tmp_path):
    async with Lab(scenario, state_dir=tmp_path / "lab", time_scale=0.05) as lab:
        published: list[tuple[str, str]] = []
        for node in lab.store.iter("nodes"):
            for a in node["status"].get("addresses") or ():
                if a["type"] in ("InternalIP", "ExternalIP"):
                    published.append((f"node {node['metadata']['name']} {a['type']}",
                                      a["address"]))
        config = lab.store.get("configmaps", "kube-system", "kubeadm-config")
        m = re.search(r'controlPlaneEndpoint: "([^"]*)"', config["data"]["ClusterConfiguration"])
        assert m is not None
        if m.group(1):
            published.append(("controlPlaneEndpoint", host_of(m.group(1))))
        for pod in lab.store.iter("pods"):
            value = (pod["metadata"].get("annotations") or {}).get(ADVERTISE)
            if value:
                published.append((f"pod {pod['metadata']['name']} advertise", host_of(value)))
            for field in ("hostIP", "podIP"):
                if pod["status"].get(field):
                    published.append((f"pod {pod['metadata']['name']} {field}",
                                      pod["status"][field]))
        for node in lab.store.iter("nodes"):
            published += [(f"node {node['metadata']['name']} podCIDR", cidr.split("/")[0])
                          for cidr in node["spec"].get("podCIDRs") or ()]
        for service in lab.store.iter("services"):
            published += [(f"service {service['metadata']['name']} clusterIP", ip)
                          for ip in service["spec"].get("clusterIPs") or ()]
        for name in ("podSubnet", "serviceSubnet"):
            subnet = re.search(rf"{name}: (\S+)", config["data"]["ClusterConfiguration"])
            assert subnet is not None
            published.append((name, subnet.group(1).split("/")[0]))
        endpoints = lab.store.get("endpoints", "default", "kubernetes")
        published += [("default/kubernetes endpoint", a["ip"])
                      for s in endpoints.get("subsets") or () for a in s.get("addresses") or ()]
        kubeconfig = yaml.safe_load(lab.kubeconfig_path.read_text())
        published += [(f"kubeconfig cluster {c['name']}", host_of(c["cluster"]["server"]))
                      for c in kubeconfig["clusters"]]
        inventory = yaml.safe_load(lab.inventory_path.read_text())
        published += [(f"inventory {name}", entry["host"])
                      for name, entry in inventory["nodes"].items()]
        assert len(published) > len(lab.spec.nodes)
        outside = [(what, host) for what, host in published if not on_loopback(host)]
        assert outside == []
