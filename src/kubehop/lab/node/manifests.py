"""The files kubeadm leaves on a node, as text: static pod manifests, kubeconfigs, kubelet
configuration, package sources, os-release.

Manifests are rendered from templates shaped like kubeadm's own output, so an operator's
`sed -i 's/kube-apiserver:v1.28.9/.../'` finds exactly the line it would on a real node, and a
manifest kubeadm regenerates for the version already running is byte-identical (kubeadm then
skips it: "Current and new manifests of ... are equal").
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import yaml

from kubehop.lab.addresses import CLUSTER_DNS_IP, POD_SUBNET, SERVICE_SUBNET

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
MANIFEST_DIR = "/etc/kubernetes/manifests"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
SOURCES_FILE = "/etc/apt/sources.list.d/kubernetes.list"
YUM_REPO_FILE = "/etc/yum.repos.d/kubernetes.repo"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"


def manifest_path(component: str) -> str:
    return f"{MANIFEST_DIR}/{component}.yaml"


_COMMANDS: dict[str, list[str]] = {
    "etcd": [
        "etcd", "--advertise-client-urls=https://{ip}:2379",
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--client-cert-auth=true",
        "--data-dir=/var/lib/etcd", "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        "--initial-advertise-peer-urls=https://{ip}:2380",
        "--initial-cluster={node}=https://{ip}:2380",
        "--key-file=/etc/kubernetes/pki/etcd/server.key",
        "--listen-client-urls=https://127.0.0.1:2379,https://{ip}:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381", "--listen-peer-urls=https://{ip}:2380",
        "--name={node}", "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
        "--peer-client-cert-auth=true", "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--snapshot-count=10000",
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
    ],
    "kube-apiserver": [
        "kube-apiserver", "--advertise-address={ip}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User", "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        f"--service-cluster-ip-range={SERVICE_SUBNET}",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    ],
    "kube-controller-manager": [
        "kube-controller-manager", "--allocate-node-cidrs=true",
        "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--bind-address=127.0.0.1", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        f"--cluster-cidr={POD_SUBNET}", "--cluster-name=kubernetes",
        "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
        "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf", "--leader-elect=true",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--root-ca-file=/etc/kubernetes/pki/ca.crt",
        "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
        f"--service-cluster-ip-range={SERVICE_SUBNET}", "--use-service-account-credentials=true",
    ],
    "kube-scheduler": [
        "kube-scheduler", "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
        "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf", "--bind-address=127.0.0.1",
        "--kubeconfig=/etc/kubernetes/scheduler.conf", "--leader-elect=true",
    ],
}
_PROBE = {  # component → (host, path, port, scheme)
    "etcd": ("127.0.0.1", "/health?exclude=NOSPACE&serializable=true", 2381, "HTTP"),
    "kube-apiserver": ("{ip}", "/livez", 6443, "HTTPS"),
    "kube-controller-manager": ("127.0.0.1", "/healthz", 10257, "HTTPS"),
    "kube-scheduler": ("127.0.0.1", "/healthz", 10259, "HTTPS"),
}
_CPU = {"etcd": None, "kube-apiserver": "250m", "kube-controller-manager": "200m",
        "kube-scheduler": "100m"}
_VOLUMES = {
    "etcd": [("etcd-certs", "/etc/kubernetes/pki/etcd", "DirectoryOrCreate", False),
             ("etcd-data", "/var/lib/etcd", "DirectoryOrCreate", False)],
    "kube-apiserver": [("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
                       ("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate", True),
                       ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", True)],
    "kube-controller-manager": [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
        ("flexvolume-dir", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
         "DirectoryOrCreate", False),
        ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
        ("kubeconfig", "/etc/kubernetes/controller-manager.conf", "FileOrCreate", True)],
    "kube-scheduler": [("kubeconfig", "/etc/kubernetes/scheduler.conf", "FileOrCreate", True)],
}


def render_static_pod(component: str, image: str, node: str, ip: str) -> str:
    """A static pod manifest as `kubeadm init`/`upgrade` writes it for `component`."""
    fmt = {"ip": ip, "node": node}
    lines = ["apiVersion: v1", "kind: Pod", "metadata:"]
    if component == "kube-apiserver":
        lines += ["  annotations:",
                  f"    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: {ip}:6443"]
    elif component == "etcd":
        lines += ["  annotations:",
                  f"    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://{ip}:2379"]
    lines += ["  creationTimestamp: null", "  labels:", f"    component: {component}",
              "    tier: control-plane", f"  name: {component}", "  namespace: kube-system",
              "spec:", "  containers:", "  - command:"]
    lines += [f"    - {arg.format(**fmt)}" for arg in _COMMANDS[component]]
    host, path, port, scheme = _PROBE[component]
    probe = ["      failureThreshold: {n}", "      httpGet:", f"        host: {host.format(**fmt)}",
             f"        path: {path}", f"        port: {port}", f"        scheme: {scheme}",
             "      initialDelaySeconds: 10", "      periodSeconds: 10", "      timeoutSeconds: 15"]
    lines += [f"    image: {image}", "    imagePullPolicy: IfNotPresent", "    livenessProbe:"]
    lines += [p.replace("{n}", "8") for p in probe]
    lines += [f"    name: {component}", "    resources:", "      requests:"]
    lines += (["        cpu: 100m", "        memory: 100Mi"] if _CPU[component] is None
              else [f"        cpu: {_CPU[component]}"])
    lines += ["    startupProbe:"] + [p.replace("{n}", "24") for p in probe]
    lines += ["    volumeMounts:"]
    for name, hostpath, _kind, ro in _VOLUMES[component]:
        lines += [f"    - mountPath: {hostpath}", f"      name: {name}"]
        if ro:
            lines.append("      readOnly: true")
    lines += ["  hostNetwork: true", "  priority: 2000001000",
              "  priorityClassName: system-node-critical", "  securityContext:",
              "    seccompProfile:", "      type: RuntimeDefault", "  volumes:"]
    for name, hostpath, kind, _ro in _VOLUMES[component]:
        lines += ["  - hostPath:", f"      path: {hostpath}", f"      type: {kind}",
                  f"    name: {name}"]
    lines.append("status: {}")
    return "\n".join(lines) + "\n"


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_manifest(text: str) -> dict[str, Any] | None:
    """The decoded pod of a manifest, or None when the kubelet could not decode it."""
    try:
        doc = yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml's when built in)
    except yaml.YAMLError:
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        return None
    containers = (doc.get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        return None
    return doc


def manifest_image(text: str) -> str | None:
    """The image of the first container of a manifest (None if it does not decode)."""
    doc = parse_manifest(text)
    image = doc["spec"]["containers"][0].get("image") if doc else None
    return image if isinstance(image, str) and image else None


def manifest_hash(text: str) -> str:
    """What the kubelet keys a static pod on: the decoded pod (formatting-only edits don't
    restart it), or the raw bytes when it does not decode."""
    doc = parse_manifest(text)
    data = json.dumps(doc, sort_keys=True) if doc is not None else text
    return hashlib.md5(data.encode()).hexdigest()  # an identity, not security


def _fake_pem(label: str, seed: str) -> str:
    body = base64.b64encode(hashlib.sha512(seed.encode()).digest() * 3).decode()
    return f"-----BEGIN {label}-----\n" + "\n".join(
        body[i:i + 64] for i in range(0, len(body), 64)) + f"\n-----END {label}-----\n"


def kubeconfig(user: str, server: str, seed: str) -> str:
    """A kubeconfig like kubeadm's admin.conf/kubelet.conf (certificates are placeholders)."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {b64(_fake_pem('CERTIFICATE', 'ca'))}\n"
        f"    server: {server}\n  name: kubernetes\ncontexts:\n- context:\n"
        f"    cluster: kubernetes\n    user: {user}\n  name: {user}@kubernetes\n"
        f"current-context: {user}@kubernetes\nkind: Config\npreferences: {{}}\nusers:\n"
        f"- name: {user}\n  user:\n"
        f"    client-certificate-data: {b64(_fake_pem('CERTIFICATE', seed))}\n"
        f"    client-key-data: {b64(_fake_pem('RSA PRIVATE KEY', seed + 'key'))}\n"
    )


def ca_cert() -> str:
    return _fake_pem("CERTIFICATE", "ca")


def kubelet_config() -> str:
    """/var/lib/kubelet/config.yaml as kubeadm writes it from the kubelet-config ConfigMap."""
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- {CLUSTER_DNS_IP}
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {{}}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"""


def kubeadm_flags(pause: str = "3.9") -> str:
    return ('KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/'
            f'containerd.sock --pod-infra-container-image=registry.k8s.io/pause:{pause}"\n')


def apt_source_line(minor: str | None, legacy: bool) -> str:
    """The kubernetes.list line of the upstream install guide (or the retired legacy one)."""
    if legacy:
        return ("deb [signed-by=/etc/apt/keyrings/kubernetes-archive-keyring.gpg] "
                "https://apt.kubernetes.io/ kubernetes-xenial main\n")
    return f"deb [signed-by={KEYRING}] https://pkgs.k8s.io/core:/stable:/v{minor}/deb/ /\n"


def yum_repo(minor: str | None, legacy: bool) -> str:
    """/etc/yum.repos.d/kubernetes.repo of the upstream install guide."""
    if legacy:
        base = "https://packages.cloud.google.com/yum/repos/kubernetes-el7-$basearch"
        key = "https://packages.cloud.google.com/yum/doc/rpm-package-key.gpg"
    else:
        base = f"https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/"
        key = f"https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/repodata/repomd.xml.key"
    return (f"[kubernetes]\nname=Kubernetes\nbaseurl={base}\nenabled=1\ngpgcheck=1\n"
            f"gpgkey={key}\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")


def os_release(image: str, family: str) -> str:
    """/etc/os-release for an `osImage` such as `Ubuntu 22.04.4 LTS` or `Rocky Linux 9.3`."""
    if family == "rhel":
        version = next((w for w in image.split() if w[:1].isdigit()), "9.3")
        return (f'NAME="Rocky Linux"\nVERSION="{version} (Blue Onyx)"\nID="rocky"\n'
                f'ID_LIKE="rhel centos fedora"\nVERSION_ID="{version}"\n'
                'PLATFORM_ID="platform:el9"\n'
                f'PRETTY_NAME="{image}"\nANSI_COLOR="0;32"\nHOME_URL="https://rockylinux.org/"\n')
    name, _, rest = image.partition(" ")
    version = rest.split(" ")[0] if rest else "22.04"
    short = ".".join(version.split(".")[:2])
    codename = {"20.04": "focal", "22.04": "jammy", "24.04": "noble", "12": "bookworm"}.get(
        short, "jammy")
    return (f'PRETTY_NAME="{image}"\nNAME="{name}"\nVERSION_ID="{short}"\n'
            f'VERSION="{rest} ({codename.title()})"\nVERSION_CODENAME={codename}\n'
            f'ID={name.lower()}\nID_LIKE=debian\nHOME_URL="https://www.ubuntu.com/"\n'
            f"UBUNTU_CODENAME={codename}\n")
