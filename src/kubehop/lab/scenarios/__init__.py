"""Lab scenarios: YAML descriptions of a simulated cluster (DESIGN "Scenario files (v1)").

    sc = load_scenario("oldversion")            # a built-in, by name
    sc = load_scenario("large:nodes=5000,pods=30")  # a built-in with parameters
    sc = load_scenario("./my-cluster.yaml")     # a file
    populate(to_cluster_spec(sc), store)        # kubehop.lab.fixtures.cluster

Built-ins live in `builtin/*.yaml` (package data). Parameters (`NAME:key=value,...`) exist only
for built-ins that declare them (`params.PARAMETERS`): `large` takes `nodes` (default 1000,
3 of them control plane) and `pods` (application pods per worker, default 30).
Every problem is a `UsageError` of one line naming the file, the field path and the problem.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from kubehop.lab.scenarios import params
from kubehop.lab.scenarios.convert import to_cluster_spec
from kubehop.lab.scenarios.schema import Scenario
from kubehop.lab.scenarios.validate import parse_scenario
from kubehop.lab.scenarios.yamlpos import load
from kubehop.model.errors import UsageError

__all__ = ["Scenario", "builtin_names", "builtin_scenarios", "load_scenario", "parse_text",
           "to_cluster_spec"]

BUILTIN_ORDER = ("oldversion", "ha", "large", "rpm")


def _builtin_dir() -> Traversable:
    return resources.files(__name__).joinpath("builtin")


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, the classic ones first."""
    found = {p.name[:-5] for p in _builtin_dir().iterdir() if p.name.endswith(".yaml")}
    return [n for n in BUILTIN_ORDER if n in found] + sorted(found - set(BUILTIN_ORDER))


def builtin_scenarios() -> list[tuple[str, str]]:
    """(name, description) of every built-in scenario."""
    return [(name, load_scenario(name).description) for name in builtin_names()]


def parse_text(text: str, source: str, *, builtin: str | None = None,
               parameters: str = "") -> Scenario:
    """Validate scenario YAML `text`; `source` names it in errors. `builtin` names the built-in
    whose `parameters` (`nodes=50,pods=10`) apply."""
    doc, positions = load(text, source)
    values: dict[str, int] = {}
    if builtin is not None:
        values = params.parse(builtin, parameters)
        doc = params.apply(builtin, doc, values)
    scenario = parse_scenario(doc, source, positions)
    return dataclasses.replace(scenario, parameters=values) if values else scenario


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in by name (`large:nodes=50` with parameters) or a scenario file by path."""
    spec = name_or_path.strip()
    path = Path(spec)
    name, _, parameters = spec.partition(":")
    if name in builtin_names() and not path.exists():
        resource = _builtin_dir().joinpath(f"{name}.yaml")
        return parse_text(resource.read_text(encoding="utf-8"),
                          f"kubehop/lab/scenarios/builtin/{name}.yaml", builtin=name,
                          parameters=parameters)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if "/" in spec or spec.endswith((".yaml", ".yml")):
            raise UsageError(f"scenario {spec}: no such file") from None
        raise UsageError(f"scenario {spec}: not a built-in scenario "
                         f"({', '.join(builtin_names())}) and no such file") from None
    except IsADirectoryError:
        raise UsageError(f"scenario {spec}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise UsageError(f"scenario {spec}: not UTF-8 text") from None
    except OSError as e:
        raise UsageError(f"scenario {spec}: cannot read: {e.strerror or e}") from None
    return parse_text(text, spec)
