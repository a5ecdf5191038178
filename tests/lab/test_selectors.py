"""Label and field selectors, table-driven like apimachinery's selector tests."""

from __future__ import annotations

import pytest

from kubehop.lab.api.selectors import (
    FieldSelector,
    InvalidSelectorError,
    LabelQuery,
    field_getter,
    field_value,
)

LABELS = {"app": "web", "tier": "frontend", "replicas": "3"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("missing notin (db)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=frontend", True),
        ("app=web, tier=backend", False),
        ("replicas>2", True),
        ("replicas<3", False),
        ("app in (web, db),!missing,tier", True),
        ("example.com/role=x", False),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert LabelQuery.parse(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["app in (web", "=web", "app=we b", "a b c", "x>y", ",", "-a=b"])
def test_label_selector_errors(bad: str) -> None:
    with pytest.raises(InvalidSelectorError):
        LabelQuery.parse(bad)


POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"nodeName": "n1", "hostNetwork": True}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("spec.nodeName=n1", True),
        ("spec.nodeName==n1", True),
        ("spec.nodeName!=n1", False),
        ("spec.nodeName=n1,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("metadata.name=p,metadata.namespace=ns", True),
        ("spec.hostNetwork=true", True),
        ("status.podIP=", True),
    ],
)
def test_field_selector(selector: str, matches: bool) -> None:
    assert FieldSelector.parse(selector, "pods").matches(POD) is matches


def test_field_selector_rejects_fields_the_resource_does_not_support() -> None:
    with pytest.raises(InvalidSelectorError, match=r"field label not supported: spec\.nodeName"):
        FieldSelector.parse("spec.nodeName=n1", "deployments.apps")
    assert FieldSelector.parse("spec.unschedulable=true", "nodes").matches(
        {"metadata": {"name": "n"}, "spec": {"unschedulable": True}})


@pytest.mark.parametrize("obj", [
    {"spec": {"nodeName": "n1"}},
    {"spec": {"nodeName": ""}},
    {"spec": {"nodeName": None}},
    {"spec": {}},
    {},
    {"spec": None},
    {"spec": "text"},
    {"spec": {"nodeName": True}},
    {"spec": {"nodeName": 3}},
    {"spec": {"nodeName": {"nested": 1}}},
])
def test_a_field_getter_reads_as_field_value(obj: dict) -> None:
    assert field_getter("spec.nodeName")(obj) == field_value(obj, "spec.nodeName")
    assert field_getter("spec")(obj) == field_value(obj, "spec")
