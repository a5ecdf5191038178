"""apt-cache, dpkg-query and dpkg on a Debian-family node: what apt and dpkg report about
packages, in their formats (`apt-cache policy`, `madison`; `dpkg-query -W -f`; `dpkg -l`)."""

from __future__ import annotations

import fnmatch

from kubehop.lab.node.apt import DESCRIPTIONS, AptView, _cmp
from kubehop.lab.node.apt_pins import release_of
from kubehop.lab.node.host import LabNode, Proc, Tool
from kubehop.lab.node.repos import repo_for, sort_versions


async def apt_cache(p: Proc) -> int:
    conf: dict[str, str] = {}  # `-o Key=Value` (another sources file, another lists directory)
    args: list[str] = []
    rest = p.argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "-o" and rest:
            key, _, value = rest.pop(0).partition("=")
            conf[key.strip().lower()] = value.strip()
        elif not a.startswith("-"):
            args.append(a)
    if not args:
        p.err("E: No command given\n")
        return 100
    verb, names = args[0], args[1:]
    view = AptView(p.host, conf)
    if verb == "policy":
        if not names:
            p.out("Package files:\n 100 /var/lib/dpkg/status\n     release a=now\n")
            for src in view.sources:
                repo = repo_for(src.uri, "deb") if src.flat else None
                if repo is not None and src.uri in p.host.db.state.apt_lists:
                    rel = release_of(repo.uri, repo.minor)
                    p.out(f" 500 {repo.label}\n     release o={rel['origin']},l={rel['label']},"
                          f"c=\n     origin {rel['host']}\n")
            # Versions a preferences stanza decided (apt-private/private-cacheset policy).
            pinned = [f"     {n} -> {v} with priority {view.priority(n, v)}\n"
                      for n in sorted(view.available) for v in view.versions(n)
                      if view.pinned(n, v)]
            p.out("Pinned packages:\n" + "".join(pinned))
            return 0
        for name in names:
            if not view.known(name):
                p.err(f"N: Unable to locate package {name}\n")
                continue
            installed = p.host.db.version(name)
            lines = [f"{name}:", f"  Installed: {installed or '(none)'}",
                     f"  Candidate: {view.candidate(name) or '(none)'}", "  Version table:"]
            mine = [installed] if installed else []
            versions = sort_versions(list({*view.versions(name), *mine}))
            for v in versions:
                mark = " ***" if v == installed else "    "
                lines.append(f"{mark} {v} {view.priority(name, v)}")
                for ver, repo in view.available.get(name, []):
                    if ver == v:
                        lines.append(f"        500 {repo.label}")
                if v == installed:
                    lines.append("        100 /var/lib/dpkg/status")
            p.out("\n".join(lines) + "\n")
        return 0
    if verb == "madison":
        for name in names:
            if not view.known(name):
                p.err(f"N: Unable to locate package {name}\n")
                continue
            for v in view.versions(name):
                repo = view.repo_of(name, v)
                p.out(f"{name:>10} | {v:>10} | {repo.label if repo else ''}\n")
        return 0
    if verb in ("show", "showpkg"):
        for name in names:
            for v in view.versions(name):
                p.out(f"Package: {name}\nVersion: {v}\nArchitecture: amd64\nMaintainer: "
                      f"Kubernetes Authors <dev@kubernetes.io>\nDescription: "
                      f"{DESCRIPTIONS.get(name, name)}\n\n")
        return 0
    p.err(f"E: Invalid operation {verb}\n")
    return 100


def _status(host: LabNode, name: str) -> str:
    return ("hold" if host.db.held(name) else "install") + " ok installed"


async def dpkg_query(p: Proc) -> int:
    args = p.argv[1:]
    fmt = "${binary:Package}\t${Version}\n"
    names: list[str] = []
    show = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-W", "--show"):
            show = True
        elif a in ("-f", "--showformat") and i + 1 < len(args):
            fmt = args[i + 1]
            i += 1
        elif a.startswith(("--showformat=", "-f=")):
            fmt = a.split("=", 1)[1]
        elif a in ("-s", "--status"):
            show = False
        elif not a.startswith("-"):
            names.append(a)
        i += 1
    db = p.host.db
    status = 0
    for pattern in names or ["*"]:
        found = [n for n in sorted(db.state.installed) if fnmatch.fnmatchcase(n, pattern)]
        if not found:
            p.err(f"dpkg-query: no packages found matching {pattern}\n")
            status = 1
            continue
        for n in found:
            v = db.state.installed[n]
            if not show:
                p.out(f"Package: {n}\nStatus: {_status(p.host, n)}\nVersion: {v}\n\n")
                continue
            text = (fmt.replace("\\n", "\n").replace("\\t", "\t")
                    .replace("${binary:Package}", n).replace("${Package}", n)
                    .replace("${Version}", v).replace("${Status}", _status(p.host, n))
                    .replace("${db:Status-Abbrev}", ("hi " if db.held(n) else "ii ")))
            p.out(text)
    return status


async def dpkg(p: Proc) -> int:
    args = p.argv[1:]
    if args[:1] in (["-s"], ["--status"]):
        return await dpkg_query(Proc(p.host, ["dpkg-query", "-s", *args[1:]], p.stdin,
                                     p.write_out, p.write_err, p.root, p.cwd))
    if args[:1] in (["-l"], ["--list"]):
        db = p.host.db
        names = [n for n in sorted(db.state.installed)
                 if not args[1:] or any(fnmatch.fnmatchcase(n, a) for a in args[1:])]
        if not names:
            p.err(f"dpkg-query: no packages found matching {' '.join(args[1:])}\n")
            return 1
        p.out("Desired=Unknown/Install/Remove/Purge/Hold\n| Status=Not/Inst/Conf-files/Unpacked/"
              "halF-conf/Half-inst/trig-aWait/Trig-pend\n|/ Err?=(none)/Reinst-required "
              "(Status,Err: uppercase=bad)\n||/ Name           Version           Architecture "
              "Description\n+++-==============-=================-============-"
              "=================================\n")
        for n in names:
            flag = "hi" if db.held(n) else "ii"
            p.out(f"{flag}  {n:<14} {db.state.installed[n]:<17} amd64        "
                  f"{DESCRIPTIONS.get(n, n)}\n")
        return 0
    if args[:1] == ["--compare-versions"] and len(args) == 4:
        c = _cmp(args[1], args[3])
        ok = {"lt": c < 0, "le": c <= 0, "eq": c == 0, "ne": c != 0, "ge": c >= 0,
              "gt": c > 0}.get(args[2], False)
        return 0 if ok else 1
    p.err("dpkg: error: need an action option\n")
    return 2


TOOLS_DPKG: dict[str, Tool] = {"apt-cache": apt_cache, "dpkg-query": dpkg_query, "dpkg": dpkg}
