"""The pure parts of the simulated API: patches, selectors, tables, rounding, ages."""

from __future__ import annotations

import json

import pytest

from deploytui.demo.kube.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from deploytui.demo.kube.selectors import field_matcher, label_matcher, selector_string
from deploytui.demo.kube.tables import to_table, wants_table
from deploytui.demo.kube.util import ApiError, format_age, scaled_value

POD = {
    "metadata": {"name": "p", "labels": {"app": "web", "tier": "front"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]
    },
}


def _patch(kind: str, patch: object) -> dict:
    return apply_patch(kind, POD, json.dumps(patch).encode())


def test_strategic_merge_merges_lists_by_key_and_honours_directives() -> None:
    out = _patch(STRATEGIC_MERGE_PATCH, {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}, {"name": "app", "env": [{"name": "B", "value": "2"}]}]},
    })
    app, sidecar = out["spec"]["containers"]
    assert sidecar["image"] == "proxy:2"
    assert [e["name"] for e in app["env"]] == ["A", "B"] and app["image"] == "web:1"
    deleted = _patch(STRATEGIC_MERGE_PATCH, {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}})
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["app"]
    replaced = _patch(STRATEGIC_MERGE_PATCH, {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}})
    assert [c["name"] for c in replaced["spec"]["containers"]] == ["only"]
    unlabelled = _patch(STRATEGIC_MERGE_PATCH, {"metadata": {"labels": {"tier": None}}})
    assert unlabelled["metadata"]["labels"] == {"app": "web"}
    assert POD["metadata"]["labels"]["tier"] == "front"  # the target is never modified


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    out = _patch(MERGE_PATCH, {"spec": {"containers": [{"name": "x", "image": "y"}]}, "metadata": {"labels": None}})
    assert out["spec"]["containers"] == [{"name": "x", "image": "y"}]
    assert "labels" not in out["metadata"]


def test_json_patch_operations() -> None:
    out = _patch(JSON_PATCH, [
        {"op": "replace", "path": "/spec/containers/0/image", "value": "web:2"},
        {"op": "add", "path": "/metadata/labels/new~1key", "value": "v"},
        {"op": "remove", "path": "/spec/containers/1"},
        {"op": "test", "path": "/metadata/name", "value": "p"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
        {"op": "add", "path": "/spec/containers/-", "value": {"name": "z"}},
    ])
    assert out["spec"]["containers"][0]["image"] == "web:2"
    assert out["metadata"]["labels"]["new/key"] == "v"
    assert [c["name"] for c in out["spec"]["containers"]] == ["app", "z"]
    assert out["metadata"]["generateName"] == "p"
    with pytest.raises(ApiError) as failed:
        _patch(JSON_PATCH, [{"op": "test", "path": "/metadata/name", "value": "q"}])
    assert failed.value.code == 422
    with pytest.raises(ApiError) as unknown:
        apply_patch("application/xml", POD, b"{}")
    assert unknown.value.code == 415


def test_label_selectors() -> None:
    obj = {"metadata": {"labels": {"app": "web", "tier": "front"}}}
    for selector, expected in [
        ("app=web", True), ("app==web,tier=front", True), ("app!=web", False),
        ("tier in (front,back)", True), ("app=web,tier in (a,b)", False), ("tier notin (back)", True),
        ("app", True), ("!app", False), ("!missing", True),
    ]:
        matcher = label_matcher(selector)
        assert matcher is not None and matcher(obj) is expected, selector
    assert label_matcher("") is None
    with pytest.raises(ApiError):
        label_matcher("app in")
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]}]}) == "a=1,b=2,t in (x,y)"


def test_field_selectors() -> None:
    event = {"metadata": {"name": "e1", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"}}
    assert field_matcher("involvedObject.kind=Pod,involvedObject.name=p")(event)  # type: ignore[misc]
    assert not field_matcher("involvedObject.uid=u2")(event)  # type: ignore[misc]
    assert field_matcher("metadata.name!=e2")(event)  # type: ignore[misc]


def test_rounding_of_surge_and_unavailable() -> None:
    assert scaled_value("25%", 10, round_up=True, default="25%") == 3
    assert scaled_value("25%", 10, round_up=False, default="25%") == 2
    assert scaled_value(None, 3, round_up=False, default="25%") == 0
    assert scaled_value(2, 10, round_up=True, default="25%") == 2
    with pytest.raises(ApiError):
        scaled_value("lots", 10, round_up=True, default="25%")


def test_ages_like_kubectl() -> None:
    assert [format_age(s) for s in (5, 119, 125, 600, 7200, 16200, 86400 * 3 + 3600, 86400 * 30)] == [
        "5s", "119s", "2m5s", "10m", "120m", "4h30m", "3d1h", "30d",
    ]


def test_table_negotiation_and_shape() -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert wants_table(accept) and not wants_table("application/json")
    lease = {"metadata": {"name": "l", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"holderIdentity": "me"}}
    table = to_table("leases", [lease], now=1704067200 + 90, resource_version="7")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"] == ["l", "me", "90s"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert to_table("leases", [lease], now=0, include_object="Object")["rows"][0]["object"]["spec"] == {"holderIdentity": "me"}
    assert "object" not in to_table("leases", [lease], now=0, include_object="None")["rows"][0]
