"""`curl` and `gpg` on a simulated node, as the upstream install guide uses them:

    curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key \\
        | sudo gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg

The lab never touches the network: `curl` answers from the lab's own downloads — a registry of
URL → bytes per lab cluster (`downloads(cluster)`), then the pkgs.k8s.io repository keys of every
minor in the release data (`DEFAULT_KEY`, the same key for every minor as upstream) — and fails
like curl for anything else (`Could not resolve host`, or 404 on pkgs.k8s.io).

Keys are lab keys, not OpenPGP: `LabKey` (fingerprint, user id, creation and expiry dates) in an
ASCII-armored block (`armor`) whose body is a binary packet (`encode`), so `gpg --dearmor` writes
a binary keyring and `gpg --show-keys` prints the expiry back. Code that judges keyrings (apt's
signature check) reads either form with `read_key`; a scenario or test serves another key (an
expired one) with `downloads(cluster)[release_key_url("1.27")] = armor(key).encode()`.
"""

from __future__ import annotations

import base64
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from kubehop.lab.node.fs import FsError
from kubehop.lab.node.host import LabNode, Proc, Tool
from kubehop.model.versions import MinorVersion

if TYPE_CHECKING:
    from kubehop.lab.node.cluster import NodeFleet

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
_MAGIC = b"kubehop-lab-key v1\n"
_PACKET_TAG = 0x99  # an OpenPGP public-key packet with a two-byte length, as real keyrings begin
PKGS_HOST = "pkgs.k8s.io"
FIRST_PKGS_MINOR = MinorVersion(1, 24)  # the oldest minor pkgs.k8s.io has a repository for
_PKGS_KEY_RE = re.compile(r"^/core:/stable:/v(\d+\.\d+)/(?:deb/Release\.key|"
                          r"rpm/repodata/repomd\.xml\.key)$")


@dataclass(frozen=True, slots=True)
class LabKey:
    """A repository signing key as the lab models it."""

    fingerprint: str  # 40 hex digits; the key id is the last 16
    uid: str
    created: date
    expires: date | None = None
    algorithm: str = "rsa2048"

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]

    def expired(self, day: date) -> bool:
        """Whether the key has expired on `day` (gpg: expired from its expiry date on)."""
        return self.expires is not None and day >= self.expires


# The pkgs.k8s.io key's fingerprint and user id (the OBS project that builds the packages); its
# dates here are lab values, not upstream's.
DEFAULT_KEY = LabKey("DE15B14486CD377B9E876E1A234654DA9A296436",
                     "isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>",
                     date(2023, 8, 8), date(2029, 8, 8))


def release_key_url(minor: str, rpm: bool = False) -> str:
    """The key URL the install guide names for `minor` (`1.30`): deb `Release.key`, rpm
    `repomd.xml.key` (kubernetes/website content/en/docs/setup/production-environment/tools/
    kubeadm/install-kubeadm.md)."""
    kind = "rpm/repodata/repomd.xml.key" if rpm else "deb/Release.key"
    return f"https://{PKGS_HOST}/core:/stable:/v{minor}/{kind}"


# --- the key format ------------------------------------------------------------------------------


def encode(key: LabKey) -> bytes:
    """The binary form (what `gpg --dearmor` writes): one packet holding the key's fields."""
    fields = (f"fingerprint={key.fingerprint}\nuid={key.uid}\ncreated={key.created}\n"
              f"expires={key.expires or ''}\nalgorithm={key.algorithm}\n")
    body = _MAGIC + fields.encode()
    return bytes([_PACKET_TAG]) + len(body).to_bytes(2, "big") + body


def armor(key: LabKey) -> str:
    """The ASCII-armored form (what `Release.key` holds), with its CRC-24 line (RFC 4880 6.1)."""
    data = encode(key)
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([ARMOR_BEGIN, "", *lines, f"={crc}", ARMOR_END]) + "\n"


def dearmor(text: str) -> bytes:
    """The binary form of an armored block; ValueError when `text` holds none (or a bad CRC)."""
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        start = lines.index(ARMOR_BEGIN)
        end = lines.index(ARMOR_END, start)
    except ValueError:
        raise ValueError("no armored key block") from None
    body = lines[start + 1:end]
    if "" in body:  # armor headers (Version: ...) end at the first blank line
        body = body[body.index("") + 1:]
    crc = next((ln[1:] for ln in body if ln.startswith("=")), None)
    data = base64.b64decode("".join(ln for ln in body if ln and not ln.startswith("=")))
    if crc is not None and base64.b64decode(crc) != _crc24(data).to_bytes(3, "big"):
        raise ValueError("CRC error")
    return data


def parse_key(data: bytes) -> LabKey:
    """The key in its binary form; ValueError when `data` is not one."""
    if len(data) < 3 or data[0] != _PACKET_TAG:
        raise ValueError("not a key packet")
    body = data[3:3 + int.from_bytes(data[1:3], "big")]
    if not body.startswith(_MAGIC):
        raise ValueError("not a lab key")
    fields = dict(line.split("=", 1) for line in body[len(_MAGIC):].decode().splitlines()
                  if "=" in line)
    try:
        return LabKey(fields["fingerprint"], fields["uid"], date.fromisoformat(fields["created"]),
                      date.fromisoformat(fields["expires"]) if fields.get("expires") else None,
                      fields.get("algorithm", "rsa2048"))
    except (KeyError, ValueError):
        raise ValueError("damaged lab key") from None


def read_key(data: bytes | str) -> LabKey:
    """The key in a keyring file or a `Release.key`, armored or binary; ValueError otherwise."""
    if isinstance(data, str):
        data = data.encode("latin-1", errors="replace")
    if data.lstrip().startswith(ARMOR_BEGIN.encode()):
        return parse_key(dearmor(data.decode("latin-1")))
    return parse_key(data)


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


# --- downloads -----------------------------------------------------------------------------------

_DOWNLOADS: WeakKeyDictionary[NodeFleet, dict[str, bytes]] = WeakKeyDictionary()


def downloads(cluster: NodeFleet) -> dict[str, bytes]:
    """The lab's URL → content registry of `cluster` (consulted before the default keys)."""
    registry = _DOWNLOADS.get(cluster)
    if registry is None:
        registry = _DOWNLOADS[cluster] = {}
    return registry


def fetch(host: LabNode, url: str) -> bytes | None:
    """What `url` serves to `host`: the registry's entry, else `DEFAULT_KEY` at the key URL of
    every minor the release data knows; None when nothing is there."""
    served = downloads(host.cluster).get(url)
    if served is not None:
        return served
    parts = urlsplit(url)
    m = _PKGS_KEY_RE.match(parts.path)
    if parts.hostname == PKGS_HOST and m and m.group(1) in {
            str(v) for v in host.data.minors() if v >= FIRST_PKGS_MINOR}:
        return armor(DEFAULT_KEY).encode()
    return None


# --- curl ----------------------------------------------------------------------------------------

_CURL_VALUE_OPTIONS = {"-o", "--output", "-H", "--header", "-A", "--user-agent", "--retry",
                       "--retry-delay", "--retry-max-time", "--connect-timeout", "-m",
                       "--max-time", "--proto", "--proto-redir", "-w", "--write-out", "-x",
                       "--proxy", "--cacert"}
_CURL_LONG = {"--fail": "f", "--silent": "s", "--show-error": "S", "--location": "L",
              "--remote-name": "O", "--insecure": "k", "--verbose": "v", "--fail-with-body": "f"}


async def curl(p: Proc) -> int:
    """`curl [-fsSL] [-o FILE | -O] URL`: the lab's downloads only (see the module docstring)."""
    flags: set[str] = set()
    output: str | None = None
    urls: list[str] = []
    args = p.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a in _CURL_VALUE_OPTIONS or a in _CURL_LONG or not a.startswith("-") or a == "-":
            if a in ("-o", "--output") and i + 1 < len(args):
                output = args[i + 1]
            if a in _CURL_VALUE_OPTIONS:
                i += 2
                continue
            if a in _CURL_LONG:
                flags.add(_CURL_LONG[a])
            else:
                urls.append(a)
            i += 1
            continue
        if a.startswith("--"):
            i += 1  # another long option without a value: no effect in the lab
            continue
        for j, letter in enumerate(a[1:]):  # -fsSL, -fsSLo FILE
            if letter in "oHAmwx":
                value = a[j + 2:] or (args[i + 1] if i + 1 < len(args) else "")
                if letter == "o":
                    output = value
                if not a[j + 2:]:
                    i += 1
                break
            flags.add(letter)
        i += 1
    silent, show = "s" in flags, "S" in flags or "s" not in flags

    def fail(code: int, text: str) -> int:
        if show:
            p.err(f"curl: ({code}) {text}\n")
        return code

    if not urls:
        p.err("curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more "
              "information\n")
        return 2
    url = urls[0]
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        return fail(1, f'Protocol "{parts.scheme}" not supported')
    data = fetch(p.host, url)
    if data is None:
        if parts.hostname != PKGS_HOST:
            return fail(6, f"Could not resolve host: {parts.hostname}")
        if "f" in flags:
            return fail(22, "The requested URL returned error: 404")
        data = b"404 page not found\n"
    if "O" in flags and output is None:
        output = posixpath.basename(parts.path) or "index.html"
    if output is None or output == "-":
        p.out(data.decode("utf-8", errors="replace"))
        return 0
    try:
        p.host.fs.write_bytes(p.path(output), data, root=p.root)
    except FsError as e:
        if not silent or show:
            p.err(f"Warning: Failed to open the file {output}: {e.reason}\n")
        return fail(23, "Failure writing output to destination")
    return 0


# --- gpg -----------------------------------------------------------------------------------------


async def gpg(p: Proc) -> int:
    """`gpg --dearmor [-o FILE] [--yes] [FILE]` and `gpg --show-keys [--with-colons] [FILE]`."""
    args = p.argv[1:]
    opts: set[str] = set()
    output: str | None = None
    files: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--output") and i + 1 < len(args):
            output = args[i + 1]
            i += 2
            continue
        if a.startswith("--output="):
            output = a.split("=", 1)[1]
        elif a.startswith("-") and a != "-":
            opts.add(a)
        else:
            files.append(a)
        i += 1
    if "--dearmor" in opts or "--dearmour" in opts:
        return await _dearmor(p, opts, output, files)
    if "--show-keys" in opts or "--show-key" in opts:
        return await _show_keys(p, opts, files)
    known = {"--yes", "--batch", "--no-tty", "--quiet", "-q", "--with-colons",
             "--with-fingerprint", "--no-default-keyring"}
    unknown = sorted(opts - known)
    if unknown:
        p.err(f"gpg: invalid option \"{unknown[0]}\"\n")
        return 2
    p.err("gpg: Go ahead and type your message ...\ngpg: no valid OpenPGP data found.\n")
    return 2


async def _input(p: Proc, files: list[str]) -> tuple[str, str | None]:
    """(the input text, an error line) from the first file, or stdin."""
    if not files or files[0] == "-":
        return await p.read_stdin(), None
    try:
        return p.host.fs.read_bytes(p.path(files[0]), root=p.root).decode("latin-1"), None
    except FsError as e:
        return "", f"gpg: can't open '{files[0]}': {e.reason}\n"


async def _dearmor(p: Proc, opts: set[str], output: str | None, files: list[str]) -> int:
    text, error = await _input(p, files)
    if error:
        p.err(error + f"gpg: dearmoring failed: {error.rsplit(': ', 1)[-1]}")
        return 2
    try:
        data = dearmor(text)
    except ValueError:
        p.err("gpg: no valid OpenPGP data found.\n")
        return 2
    if output is None and files and files[0] != "-":
        output = files[0] + ".gpg"
    if output is None or output == "-":
        p.out(data.decode("latin-1"))
        return 0
    fs, path = p.host.fs, p.path(output)
    if fs.exists(path) and "--yes" not in opts:
        # gpg asks before overwriting; over SSH without a terminal it cannot ask.
        p.err(f"File '{output}' exists. Overwrite? (y/N) gpg: Sorry, no terminal at all "
              f"requested - can't get input\n")
        return 2
    try:
        fs.write_bytes(path, data, root=p.root)
    except FsError as e:
        p.err(f"gpg: can't create '{output}': {e.reason}\ngpg: dearmoring failed: {e.reason}\n")
        return 2
    return 0


async def _show_keys(p: Proc, opts: set[str], files: list[str]) -> int:
    text, error = await _input(p, files)
    if error:
        p.err(error)
        return 2
    # Each armored block of the input (`rpm -q gpg-pubkey --qf '%{DESCRIPTION}\n'` prints
    # one per imported key), or the one binary key.
    blocks = [ARMOR_BEGIN + b for b in text.split(ARMOR_BEGIN)[1:]] or [text]
    keys = []
    for block in blocks:
        try:
            keys.append(read_key(block))
        except ValueError:
            continue
    if not keys:
        p.err("gpg: no valid OpenPGP data found.\n")
        return 2
    today = datetime.fromtimestamp(p.host.clock.wall(), UTC).date()
    p.out("".join(show_key(key, today, colons="--with-colons" in opts) for key in keys))
    return 0


def show_key(key: LabKey, today: date, *, colons: bool = False) -> str:
    """`gpg --show-keys` output for `key` on `today` (`--with-colons`: the machine format, dates
    as seconds since the epoch, validity `e` once expired)."""
    expired = key.expired(today)
    if colons:
        def epoch(d: date | None) -> str:
            return str(int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())) if d else ""
        validity = "e" if expired else "-"
        bits = key.algorithm.removeprefix("rsa")
        return (f"pub:{validity}:{bits}:1:{key.key_id}:{epoch(key.created)}:"
                f"{epoch(key.expires)}::-:::scESC::::::23::0:\n"
                f"fpr:::::::::{key.fingerprint}:\n"
                f"uid:{validity}::::{epoch(key.created)}::::{key.uid}::::::::::0:\n")
    until = "" if key.expires is None else (
        f" [{'expired' if expired else 'expires'}: {key.expires}]")
    return (f"pub   {key.algorithm} {key.created} [SC]{until}\n"
            f"      {key.fingerprint}\nuid                      {key.uid}\n\n")


TOOLS_GPG_CURL: dict[str, Tool] = {"curl": curl, "gpg": gpg}
