"""Label selectors: upstream's cases for LabelSelectorAsSelector, and kubehop, the drain and the
lab agreeing on all of them.

Transcribed from kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/
helpers_test.go (TestLabelSelectorAsSelector: the selector's String() form, or an error) and
staging/src/k8s.io/apimachinery/pkg/labels/selector_test.go (TestRequirementConstructor: which
operator/values pairs are accepted; the matching rules of Requirement.Matches).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubehop.core.drain.explain import pdbs_for
from kubehop.core.selectors import SelectorError, selector_from_api, selects
from kubehop.lab.api.selectors import InvalidSelectorError as LabSelectorError
from kubehop.lab.controllers.disruption_arithmetic import compile_selector, labels_match
from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.observe.decode import PodDecoder, decode_pdbs, pdb_info

MATCH_LABELS = {"foo": "bar"}
BAZ_IN = [{"key": "baz", "operator": "In", "values": ["qux", "norf"]}]

# helpers_test.go TestLabelSelectorAsSelector: (selector, String() of the result or None: error)
AS_SELECTOR: list[tuple[dict[str, Any] | None, str | None]] = [
    (None, ""),  # labels.Nothing()
    ({}, ""),  # labels.Everything()
    ({"matchLabels": MATCH_LABELS}, "foo=bar"),
    ({"matchExpressions": BAZ_IN}, "baz in (norf,qux)"),
    ({"matchLabels": MATCH_LABELS, "matchExpressions": BAZ_IN}, "baz in (norf,qux),foo=bar"),
    ({"matchExpressions": [{"key": "baz", "operator": "Exists", "values": ["qux", "norf"]}]},
     None),
]


def expr(op: str, values: list[str] | None = None, key: str = "x") -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": op}
    if values is not None:
        out["values"] = values
    return out


# selector_test.go TestRequirementConstructor (the four LabelSelector operators), plus
# helpers.go's default branch: an unknown operator.
CONSTRUCTOR: list[tuple[dict[str, Any], bool]] = [
    (expr("In"), False), (expr("NotIn", []), False), (expr("In", ["foo"]), True),
    (expr("NotIn", ["foo"]), True), (expr("Exists"), True), (expr("DoesNotExist"), True),
    (expr("In", ["bar"], key="1foo"), True), (expr("In", ["bar"], key="1234"), True),
    (expr("Gt", ["1"]), False), (expr("Near", ["foo"]), False), (expr(""), False),
]

# Requirement.Matches: NotIn and DoesNotExist match objects that lack the key.
MATCHING: list[tuple[dict[str, Any] | None, dict[str, str], bool]] = [
    (None, {"any": "label"}, False),
    (None, {}, False),
    ({}, {"any": "label"}, True),
    ({}, {}, True),
    ({"matchLabels": MATCH_LABELS}, {"foo": "bar", "x": "y"}, True),
    ({"matchLabels": MATCH_LABELS}, {"foo": "baz"}, False),
    ({"matchLabels": MATCH_LABELS}, {}, False),
    ({"matchExpressions": BAZ_IN}, {"baz": "norf"}, True),
    ({"matchExpressions": BAZ_IN}, {"baz": "other"}, False),
    ({"matchExpressions": BAZ_IN}, {}, False),
    ({"matchExpressions": [expr("NotIn", ["a"])]}, {"x": "a"}, False),
    ({"matchExpressions": [expr("NotIn", ["a"])]}, {"x": "b"}, True),
    ({"matchExpressions": [expr("NotIn", ["a"])]}, {}, True),
    ({"matchExpressions": [expr("Exists")]}, {"x": ""}, True),
    ({"matchExpressions": [expr("Exists")]}, {"y": "1"}, False),
    ({"matchExpressions": [expr("DoesNotExist")]}, {"y": "1"}, True),
    ({"matchExpressions": [expr("DoesNotExist")]}, {"x": "1"}, False),
    ({"matchLabels": MATCH_LABELS, "matchExpressions": BAZ_IN}, {"foo": "bar", "baz": "qux"},
     True),
    ({"matchLabels": MATCH_LABELS, "matchExpressions": BAZ_IN}, {"foo": "bar"}, False),
    ({"matchLabels": MATCH_LABELS, "matchExpressions": BAZ_IN}, {"baz": "qux"}, False),
]


@pytest.mark.parametrize(("selector", "text"), AS_SELECTOR)
def test_label_selector_as_selector(selector, text):
    if text is None:
        with pytest.raises(SelectorError, match="values set must be empty for exists"):
            selector_from_api(selector)
    else:
        assert selector_from_api(selector).query() == text


def test_null_selects_nothing_and_empty_everything():
    assert selector_from_api(None).nothing
    assert selector_from_api({}).everything
    assert selector_from_api({"matchLabels": {}, "matchExpressions": []}).everything


@pytest.mark.parametrize(("requirement", "ok"), CONSTRUCTOR)
def test_requirement_constructor(requirement, ok):
    selector = {"matchExpressions": [requirement]}
    if ok:
        selector_from_api(selector)
    else:
        with pytest.raises(SelectorError):
            selector_from_api(selector)


def test_unknown_operator_is_an_error_with_apimachinerys_words():
    with pytest.raises(SelectorError, match=r'^"Near" is not a valid label selector operator$'):
        selects({"matchExpressions": [expr("Near", ["a"])]}, {"x": "a"})


@pytest.mark.parametrize(("selector", "labels", "match"), MATCHING)
def test_matching(selector, labels, match):
    assert selects(selector, labels) is match


# --- the lab (an independent transcription) agrees on every case ------------------------------

ALL_SELECTORS = [s for s, _ in AS_SELECTOR] + [{"matchExpressions": [r]} for r, _ in CONSTRUCTOR] \
    + [s for s, _, _ in MATCHING]
ALL_LABELS = [{}, {"any": "label"}, {"foo": "bar"}, {"foo": "bar", "baz": "qux"},
              {"baz": "norf"}, {"x": "a"}, {"x": "b"}, {"x": ""}, {"y": "1"}]


def _kubehop(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool | str:
    try:
        return selects(selector, labels)
    except SelectorError:
        return "error"


def _lab(selector: dict[str, Any] | None, labels: dict[str, str]) -> tuple[bool | str, ...]:
    out: list[bool | str] = []
    for matcher in (lambda: labels_match(selector, labels),
                    lambda: compile_selector(selector)(labels)):
        try:
            out.append(matcher())
        except LabSelectorError:
            out.append("error")
    return tuple(out)


@pytest.mark.parametrize("selector", ALL_SELECTORS, ids=lambda s: json.dumps(s))
def test_lab_and_kubehop_agree(selector):
    for labels in ALL_LABELS:
        ours = _kubehop(selector, labels)
        assert _lab(selector, labels) == (ours, ours), (selector, labels)


# --- where kubehop reads PDB selectors: observe (check, plan) and the drain --------------------


def _pdb(selector: dict[str, Any] | None, omit: bool = False) -> dict[str, Any]:
    spec = {} if omit else {"selector": selector}
    return {"metadata": {"name": "p", "namespace": "web"}, "spec": spec, "status": {}}


def _pods() -> list:
    items = [{"metadata": {"namespace": ns, "name": name, "labels": labels},
              "spec": {"nodeName": "w1"}, "status": {"phase": "Running"}}
             for ns, name, labels in (("web", "a", {"app": "web"}), ("web", "b", {}),
                                      ("db", "c", {"app": "web"}))]
    return PodDecoder().decode(json.dumps({"items": items}).encode())


@pytest.mark.parametrize(("raw", "covered"), [
    (_pdb(None), ()), (_pdb(None, omit=True), ()), (_pdb({}), ("web/a", "web/b")),
    (_pdb({"matchLabels": {"app": "web"}}), ("web/a",)),
    (_pdb({"matchExpressions": [expr("DoesNotExist", key="app")]}), ("web/b",)),
])
def test_observe_covers_pods_as_policy_v1(raw, covered):
    pods = [p for p in _pods() if p.namespace == "web"]
    info = pdb_info(decode_pdbs(json.dumps({"items": [raw]}).encode())[0], pods)
    assert info.pods == covered


def test_observe_names_a_pdb_with_an_unknown_operator():
    raw = _pdb({"matchExpressions": [expr("Near", ["a"], key="app")]})
    with pytest.raises(SelectorError, match=r'^PodDisruptionBudget web/p: "Near" is not a valid '
                                            r"label selector operator; fix its spec\.selector$"):
        pdb_info(decode_pdbs(json.dumps({"items": [raw]}).encode())[0], _pods())


def test_the_drain_matches_as_observe_and_refuses_an_unknown_operator():
    pod = PodInfo("web", "a", labels=(("app", "web"),))
    null, empty = PdbInfo("web", "null", selector=None), PdbInfo("web", "all", selector={})
    assert pdbs_for(pod, [null, empty]) == [empty]
    bad = PdbInfo("web", "bad", selector={"matchExpressions": [expr("Near", ["a"])]})
    with pytest.raises(SelectorError, match=r"^PodDisruptionBudget web/bad: "):
        pdbs_for(pod, [bad])
