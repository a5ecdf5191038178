"""Strategic merge, JSON merge (RFC 7386), JSON patch (RFC 6902) and apply."""

from __future__ import annotations

import json

import pytest

from kubehop.lab.api.patch import (
    APPLY,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge,
)

NODE = {"metadata": {"name": "n", "labels": {"a": "1", "b": "2"}}, "spec": {"podCIDR": "x"}}
POD = {
    "metadata": {"name": "p", "finalizers": ["f1"]},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "side:1"},
        ],
        "tolerations": [{"key": "t1"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"},
                              {"type": "Initialized", "status": "True"}]},
}


def test_cordon_and_uncordon_patches() -> None:
    cordoned = strategic_merge(NODE, {"spec": {"unschedulable": True}})
    assert cordoned["spec"] == {"podCIDR": "x", "unschedulable": True}
    assert strategic_merge(cordoned, {"spec": {"unschedulable": None}})["spec"] == {
        "podCIDR": "x"}
    assert NODE["spec"] == {"podCIDR": "x"}  # the original is untouched


def test_labels_merge_and_null_deletes() -> None:
    out = strategic_merge(NODE, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}


def test_containers_merge_by_name() -> None:
    out = strategic_merge(POD, {"spec": {"containers": [
        {"name": "side", "image": "side:2"},
        {"name": "new", "image": "new:1"},
        {"name": "app", "env": [{"name": "B", "value": "2"}]},
    ]}})
    cs = {c["name"]: c for c in out["spec"]["containers"]}
    assert [c["name"] for c in out["spec"]["containers"]] == ["app", "side", "new"]
    assert cs["side"]["image"] == "side:2"
    assert cs["app"]["image"] == "app:1"
    assert cs["app"]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_list_directives() -> None:
    out = strategic_merge(POD, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    out = strategic_merge(POD, {"spec": {"containers": [{"name": "only", "image": "x"},
                                                        {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]
    out = strategic_merge(POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}})
    assert out["metadata"]["finalizers"] == []
    out = strategic_merge(POD, {"metadata": {"finalizers": ["f2"]},
                                "$setElementOrder/x": [1]})
    assert out["metadata"]["finalizers"] == ["f1", "f2"]


def test_lists_without_merge_key_replace_and_conditions_merge_by_type() -> None:
    out = strategic_merge(POD, {"spec": {"tolerations": [{"key": "t2"}]},
                                "status": {"conditions": [{"type": "Ready",
                                                           "status": "False"}]}})
    assert out["spec"]["tolerations"] == [{"key": "t2"}]
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "False"},
                                           {"type": "Initialized", "status": "True"}]


def test_map_replace_directive() -> None:
    out = strategic_merge(NODE, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert out["metadata"]["labels"] == {"z": "9"}


# RFC 7386 appendix A examples.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_rfc7386(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_replaces_lists() -> None:
    out = apply_patch(POD, json.dumps({"spec": {"containers": [{"name": "x"}]}}).encode(), MERGE)
    assert out["spec"]["containers"] == [{"name": "x"}]


# RFC 6902 appendix A examples.
@pytest.mark.parametrize(
    ("doc", "ops", "result"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
         {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
         {"foo": ["bar", "qux", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
         {"foo": ["bar", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
         {"baz": "boo", "foo": "bar"}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]},
         [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"baz": "qux", "foo": ["a", 2, "c"]},
         [{"op": "test", "path": "/baz", "value": "qux"},
          {"op": "test", "path": "/foo/1", "value": 2}],
         {"baz": "qux", "foo": ["a", 2, "c"]}),
        ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
         {"foo": "bar", "child": {"grandchild": {}}}),
        ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
         {"foo": ["bar", ["abc", "def"]]}),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"a": 1}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1}),
    ],
)
def test_json_patch_rfc6902(doc: object, ops: list, result: object) -> None:
    assert json_patch(doc, ops) == result


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/baz", "value": "bar"}],
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/foo/9", "value": 1}],
    ],
)
def test_json_patch_failures_are_unprocessable(ops: list) -> None:
    with pytest.raises(PatchError) as e:
        json_patch({"baz": "qux", "foo": [1]}, ops)
    assert e.value.code == 422


def test_malformed_patches_are_bad_requests() -> None:
    with pytest.raises(PatchError) as e:
        apply_patch(NODE, b"{not json", STRATEGIC)
    assert e.value.code == 400
    with pytest.raises(PatchError) as e:
        apply_patch(NODE, b'{"op": "add"}', JSON_PATCH)
    assert e.value.code == 400


def test_apply_merges_yaml_over_the_live_object() -> None:
    body = b"metadata:\n  labels:\n    c: '3'\nspec:\n  unschedulable: true\n"
    out = apply_patch(NODE, body, APPLY)
    assert out["metadata"]["labels"] == {"a": "1", "b": "2", "c": "3"}
    assert out["spec"] == {"podCIDR": "x", "unschedulable": True}
