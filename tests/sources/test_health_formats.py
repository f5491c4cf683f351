"""Payload parsers and secret masking (pure functions over bytes; the HTTP side is in
test_health.py)."""

from __future__ import annotations

import json

import pytest

from deploytui.sources.health_formats import (
    is_secret_key,
    mask_payload,
    mask_text,
    normalise_status,
    parse_health,
    pretty_payload,
)


@pytest.mark.parametrize(("word", "status"), [
    ("UP", "pass"), ("healthy", "pass"), ("ok", "pass"), ("pass", "pass"), (True, "pass"),
    ("degraded", "warn"), ("warn", "warn"), ("OUT_OF_SERVICE", "fail"), ("DOWN", "fail"),
    ("unhealthy", "fail"), ("fail", "fail"), (False, "fail"), ("UNKNOWN", "unknown"),
    ("banana", "unknown"), (None, "unknown"), (3, "unknown"),
])
def test_status_words_normalise(word: object, status: str) -> None:
    assert normalise_status(word) == status


def test_spring_boot_1_details_nesting() -> None:
    body = {"status": "DOWN", "details": {"db": {"status": "DOWN", "details": {"error": "x"}},
                                          "diskSpace": {"status": "UP", "details": {"free": 1}}}}
    r = parse_health(503, "application/json", json.dumps(body).encode())
    assert r.format == "actuator"
    assert {c.name: c.status for c in r.checks} == {"db": "fail", "diskSpace": "pass"}


def test_ietf_with_several_components_per_check() -> None:
    body = {"status": "pass", "checks": {"db:connections": [
        {"componentId": "a", "status": "pass", "observedValue": 3},
        {"componentId": "b", "status": "fail", "observedValue": 0, "output": "password=hunter2"}]}}
    r = parse_health(200, "application/health+json", json.dumps(body).encode())
    assert [c.name for c in r.checks] == ["db:connections[a]", "db:connections[b]"]
    assert "hunter2" not in r.checks[1].detail


def test_5xx_with_a_healthy_body_is_not_healthy() -> None:
    r = parse_health(503, "application/json", b'{"status": "healthy"}')
    assert r.status == "fail" and "503" in r.note


def test_status_code_only() -> None:
    assert parse_health(200, "", b"").status == "pass"
    assert parse_health(429, "", b"").status == "warn"
    assert parse_health(401, "text/html", b"<h1>login</h1>").status == "fail"


def test_cut_json_without_a_status_is_unparseable() -> None:
    r = parse_health(200, "application/json", b'{"padding": "xxxxxxxx', truncated=True, cap=20)
    assert r.format == "unparseable" and "cut at 20" in r.note


@pytest.mark.parametrize(("key", "secret"), [
    ("password", True), ("db_password", True), ("apiKey", True), ("X-Auth-Token", True),
    ("Authorization", True), ("client_secret", True), ("privateKey", True),
    ("keyspace", False), ("status", False), ("version", False), ("passed", False),
])
def test_secret_looking_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_masking_payloads_and_text() -> None:
    doc = {"db": {"url": "postgres://app:pw@db:5432/x", "password": "hunter2"},
           "tokens": {"a": "t1"}, "items": [{"secret": "s"}], "note": "Bearer abcdefgh"}
    masked = mask_payload(doc)
    flat = json.dumps(masked)
    for leaked in ("hunter2", ":pw@", "t1", '"s"', "abcdefgh"):
        assert leaked not in flat
    assert masked["db"]["url"] == "postgres://***@db:5432/x"
    assert mask_text("token=abc123&x=1") == "token=***&x=1"


def test_pretty_payload_indents_json_and_escapes_binary() -> None:
    assert pretty_payload(b'{"a":{"b":1}}') == '{\n  "a": {\n    "b": 1\n  }\n}'
    assert pretty_payload(b"\x00\xffok") == "\\x00\\xffok"
    assert pretty_payload(b"") == "(empty body)"
