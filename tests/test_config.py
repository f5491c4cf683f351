"""The typed TOML config: every section valid and invalid, key paths, env vars, secrets."""

from __future__ import annotations

import dataclasses
import math
import textwrap
from pathlib import Path

import pytest

from deploytui.config import (
    GuardCriterion,
    Levels,
    NotifyChannel,
    Secret,
    ServiceSettings,
    Settings,
    find_config_path,
    load_config,
    mask,
    operator_identity,
    parse_config,
)
from deploytui.errors import ConfigError

SOURCE = "/etc/deploytui/test.toml"

SVC = 'name = "{name}"\nenv = "{env}"\nhealth_url = "http://127.0.0.1:8080/health"\n'


def cfg(text: str, environ: dict[str, str] | None = None) -> Settings:
    return parse_config(textwrap.dedent(text), source=SOURCE, environ=environ or {})


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg(text, environ)
    err = info.value
    assert err.path == SOURCE
    assert str(err).startswith(f"{SOURCE}: ")
    return err.problems


def one_problem(text: str, environ: dict[str, str] | None = None) -> str:
    found = problems(text, environ)
    assert len(found) == 1, found
    return found[0]


def services(n: int, env: str = "prod") -> str:
    return "".join("[[services]]\n" + SVC.format(name=f"svc{i}", env=env) for i in range(n))


# --- an empty file and a full valid file ------------------------------------------------------


def test_empty_file_gives_defaults() -> None:
    s = cfg("")
    assert s == dataclasses.replace(Settings(), source_path=SOURCE)
    assert s.services == ()
    assert s.console.refresh_interval == 5.0
    assert s.console.layout == "auto"
    assert s.guard.mode == "propose"
    assert s.rules.error_rate_percent == Levels(1.0, 5.0, 10.0)
    assert s.rules.memory_percent.rollback is None
    assert s.read_only is False


def test_no_path_gives_defaults() -> None:
    assert load_config(None) == Settings()


FULL = """
[console]
refresh_interval = 1
read_only = true
lock_read_only = true
theme = "light"
themes_dir = "themes"
layout = "tabs"
wall = true
wall_rotate_seconds = 30
stale_after_intervals = 5
operator = "alice@ops"

[health]
timeout = 0.5
concurrency = 7
max_body_bytes = 1024
latency_target_ms = 200
latency_alert_ms = 400
availability_target = 99.0
availability_alert = 98.0
window_seconds = 60

[[services]]
name = "checkout"
env = "staging"
team = "payments"
health_url = "https://checkout.example.com/health"
live_url = "http://127.0.0.1:1/live"
ready_url = "http://127.0.0.1:1/ready"
metrics_url = "http://127.0.0.1:1/metrics"
expected_version = "1.2.3"
tags = ["tier-1", "pci"]
critical_checks = ["db"]
deployment = "shop/checkout"
headers = { Authorization = "Bearer abc" }

[[services]]
name = "checkout"
env = "prod"
health_url = "http://127.0.0.1:2/health"

[kubernetes]
enabled = true
kubeconfig = "~/kube.yaml"
context = "kind-dev"
namespaces = ["shop", "web"]
in_cluster = false
stall_after_seconds = 120
request_timeout = 3
lease_duration_seconds = 20
lease_namespace = "ops"

[prometheus]
url = "http://127.0.0.1:9090"
timeout = 2
service_label = "app"
token = "prom-token"
[prometheus.queries]
error_rate = "sum by (service) (rate(x[5m]))"

[alertmanager]
url = "http://127.0.0.1:9093"
timeout = 2
ack_minutes = 30
ack_comment = "on it"
token = "am-token"

[ports]
registry = "ports.json"
compose_files = ["docker-compose.yml"]
allowed = { dev = "3000-3999" }
allow_privileged = true
probe = false
probe_host = "10.0.0.1"
probe_timeout = 0.2
[ports.allocations.checkout.prod]
start = 5050
end = 5051

[rules]
for_seconds = 30
hysteresis = 0.2
error_rate_percent = { warning = 2, critical = 4, rollback = 8 }
p95_seconds = { warning = 1, critical = 2 }
memory_percent = { warning = 60, critical = 80 }
restarts_per_minute = { warning = 0.2, critical = 0.4 }
response_minutes = { P1 = 5 }

[guard]
mode = "auto"
window_minutes = 10
interval_seconds = 5
countdown_seconds = 10
cooldown_minutes = 30
dry_run = true
error_rate_percent = { threshold = 5, for_seconds = 60, limit = 2 }
health_failures = { threshold = 2 }

[notify]
backoff_seconds = [1, 2]
[[notify.channels]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/T0/B0/XYZ"
timeout = 3
[[notify.channels]]
name = "pager"
kind = "pagerduty"
routing_key = "rk"
[[notify.routes]]
role = "ops"
events = ["rollout_failed"]
channels = ["slack", "pager"]

[incidents]
open_on_critical_alert = false
open_on_prod_unhealthy = false
default_severity = "P1"
auto_close_minutes = 5

[postmortem]
output_dir = "pm"

[store]
path = "state/db.sqlite"
retention_days = 7

[keymap]
rollback = "u,ctrl+z"
"""


def test_every_section_valid() -> None:
    s = cfg(FULL)
    c = s.console
    assert (c.refresh_interval, c.read_only, c.lock_read_only, c.theme, c.themes_dir) == (
        1.0, True, True, "light", "themes")
    assert (c.layout, c.wall, c.wall_rotate_seconds, c.stale_after_intervals, c.operator) == (
        "tabs", True, 30.0, 5, "alice@ops")
    assert isinstance(c.refresh_interval, float)  # an integer in TOML becomes the field's float
    h = s.health
    assert (h.timeout, h.concurrency, h.max_body_bytes, h.window_seconds) == (0.5, 7, 1024, 60.0)
    assert (h.latency_target_ms, h.latency_alert_ms) == (200.0, 400.0)
    assert (h.availability_target, h.availability_alert) == (99.0, 98.0)

    assert [svc.key for svc in s.services] == ["staging/checkout", "prod/checkout"]
    first = s.services[0]
    assert first.team == "payments"
    assert first.health_url == "https://checkout.example.com/health"
    assert (first.live_url, first.ready_url, first.metrics_url) == (
        "http://127.0.0.1:1/live", "http://127.0.0.1:1/ready", "http://127.0.0.1:1/metrics")
    assert first.expected_version == "1.2.3"
    assert first.tags == ("tier-1", "pci")
    assert first.critical_checks == ("db",)
    assert first.deployment == "shop/checkout"
    assert first.headers["Authorization"] == Secret("Bearer abc")
    assert first.headers["Authorization"].reveal() == "Bearer abc"
    assert s.services[1].env == "prod"
    assert s.service("prod/checkout") is s.services[1]
    assert s.service("checkout") is s.services[0]
    assert s.service("nope") is None

    k = s.kubernetes
    assert (k.enabled, k.kubeconfig, k.context, k.namespaces, k.in_cluster) == (
        True, "~/kube.yaml", "kind-dev", ("shop", "web"), False)
    assert (k.stall_after_seconds, k.request_timeout, k.lease_duration_seconds, k.lease_namespace) == (
        120.0, 3.0, 20, "ops")

    p = s.prometheus
    assert (p.url, p.timeout, p.service_label) == ("http://127.0.0.1:9090", 2.0, "app")
    assert p.token.reveal() == "prom-token"
    assert dict(p.queries) == {"error_rate": "sum by (service) (rate(x[5m]))"}
    a = s.alertmanager
    assert (a.url, a.timeout, a.ack_minutes, a.ack_comment) == (
        "http://127.0.0.1:9093", 2.0, 30.0, "on it")
    assert a.token.reveal() == "am-token"

    po = s.ports
    assert (po.registry, po.compose_files, dict(po.allowed)) == (
        "ports.json", ("docker-compose.yml",), {"dev": "3000-3999"})
    assert (po.allow_privileged, po.probe, po.probe_host, po.probe_timeout) == (
        True, False, "10.0.0.1", 0.2)
    assert po.allocations["checkout"]["prod"]["start"] == 5050

    r = s.rules
    assert (r.for_seconds, r.hysteresis) == (30.0, 0.2)
    assert r.error_rate_percent == Levels(2.0, 4.0, 8.0)
    assert r.p95_seconds == Levels(1.0, 2.0, None)
    assert dict(r.response_minutes) == {"P1": 5.0}

    g = s.guard
    assert (g.mode, g.window_minutes, g.interval_seconds, g.countdown_seconds) == (
        "auto", 10.0, 5.0, 10.0)
    assert (g.cooldown_minutes, g.dry_run) == (30.0, True)
    assert g.error_rate_percent == GuardCriterion(5.0, 60.0, 2)
    assert g.health_failures == GuardCriterion(2.0, 300.0, 3)  # defaults for the rest
    assert g.p95_seconds == GuardCriterion(5.0, 300.0, 3)      # an untouched criterion

    n = s.notify
    assert n.backoff_seconds == (1.0, 2.0)
    assert [(ch.name, ch.kind) for ch in n.channels] == [("slack", "slack"), ("pager", "pagerduty")]
    assert n.channels[0].url.reveal() == "https://hooks.slack.com/services/T0/B0/XYZ"
    assert n.channels[0].timeout == 3.0
    assert n.channels[1].routing_key.reveal() == "rk"
    assert n.routes[0].channels == ("slack", "pager")
    assert n.routes[0].events == ("rollout_failed",)

    i = s.incidents
    assert (i.open_on_critical_alert, i.open_on_prod_unhealthy, i.default_severity,
            i.auto_close_minutes) == (False, False, "P1", 5.0)
    assert s.postmortem.output_dir == "pm"
    assert (s.store.path, s.store.retention_days) == ("state/db.sqlite", 7.0)
    assert dict(s.keymap) == {"rollback": "u,ctrl+z"}

    # relative paths resolve against the file's folder
    assert s.postmortem_dir == Path("/etc/deploytui/pm")
    assert s.store_path == Path("/etc/deploytui/state/db.sqlite")
    assert s.read_only is True


def test_settings_are_immutable() -> None:
    s = cfg(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.console.theme = "light"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.keymap["x"] = "y"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.ports.allocations["checkout"]["prod"]["start"] = 1  # type: ignore[index]
    assert isinstance(s.services, tuple)


def test_wall_implies_read_only() -> None:
    assert cfg("[console]\nwall = true\n").read_only is True
    assert cfg("[console]\nread_only = true\n").read_only is True
    assert cfg("[console]\n").read_only is False


# --- invalid: each section ------------------------------------------------------------------

WRONG_TYPE = [
    ("[console]\nrefresh_interval = 'fast'\n", "console.refresh_interval", "expected a number"),
    ("[console]\nread_only = 'yes'\n", "console.read_only", "expected true or false"),
    ("[console]\ntheme = 3\n", "console.theme", "expected a string"),
    ("[console]\nstale_after_intervals = 2.5\n", "console.stale_after_intervals",
     "expected an integer"),
    ("[console]\nrefresh_interval = true\n", "console.refresh_interval", "expected a number"),
    ("[health]\nconcurrency = '10'\n", "health.concurrency", "expected an integer"),
    ("[health]\ntimeout = [1]\n", "health.timeout", "expected a number"),
    ("[[services]]\nname = 1\nhealth_url = 'http://a/h'\n", "services[0].name",
     "expected a string"),
    ("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\ntags = 'x'\n", "services[0].tags",
     "expected a list"),
    ("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\ntags = ['x', 2]\n",
     "services[0].tags[1]", "expected a string"),
    ("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\nheaders = 'x'\n",
     "services[0].headers", "expected a table"),
    ("[kubernetes]\nenabled = 1\n", "kubernetes.enabled", "expected true or false"),
    ("[kubernetes]\nnamespaces = 'shop'\n", "kubernetes.namespaces", "expected a list"),
    ("[kubernetes]\nlease_duration_seconds = 1.5\n", "kubernetes.lease_duration_seconds",
     "expected an integer"),
    ("[prometheus]\nqueries = ['x']\n", "prometheus.queries", "expected a table"),
    ("[prometheus]\nqueries = { error_rate = 1 }\n", "prometheus.queries.error_rate",
     "expected a string"),
    ("[alertmanager]\nack_minutes = '1h'\n", "alertmanager.ack_minutes", "expected a number"),
    ("[ports]\ncompose_files = 'a.yml'\n", "ports.compose_files", "expected a list"),
    ("[ports]\nprobe = 'no'\n", "ports.probe", "expected true or false"),
    ("[rules]\nerror_rate_percent = 5\n", "rules.error_rate_percent", "expected a table"),
    ("[rules]\np95_seconds = { warning = 'x', critical = 1 }\n", "rules.p95_seconds.warning",
     "expected a number"),
    ("[rules]\nresponse_minutes = { P1 = 'soon' }\n", "rules.response_minutes.P1",
     "expected a number"),
    ("[guard]\ndry_run = 'no'\n", "guard.dry_run", "expected true or false"),
    ("[guard]\np95_seconds = { threshold = 1, limit = 2.5 }\n", "guard.p95_seconds.limit",
     "expected an integer"),
    ("[notify]\nbackoff_seconds = 5\n", "notify.backoff_seconds", "expected a list"),
    ("[notify]\nchannels = { name = 'x' }\n", "notify.channels", "expected a list"),
    ("[[notify.routes]]\nrole = 'ops'\nchannels = 'x'\n", "notify.routes[0].channels",
     "expected a list"),
    ("[incidents]\nauto_close_minutes = 'x'\n", "incidents.auto_close_minutes",
     "expected a number"),
    ("[postmortem]\noutput_dir = 1\n", "postmortem.output_dir", "expected a string"),
    ("[store]\nretention_days = 'x'\n", "store.retention_days", "expected a number"),
    ("[keymap]\nrollback = 1\n", "keymap.rollback", "expected a string"),
    ("console = 3\n", "console", "expected a table"),
    ("services = 3\n", "services", "expected a list"),
    ("[services]\nname = 'a'\n", "services", "expected a list"),
    ("services = [1]\n", "services[0]", "expected a table"),
    ("keymap = 'u'\n", "keymap", "expected a table"),
]


@pytest.mark.parametrize(("text", "path", "what"), WRONG_TYPE,
                         ids=[c[1] + ":" + c[2] for c in WRONG_TYPE])
def test_wrong_type(text: str, path: str, what: str) -> None:
    problem = one_problem(text)
    assert problem.startswith(f"{path}: {what}"), problem


UNKNOWN = [
    ("[consle]\n", "consle", "console"),
    ("[console]\nrefesh_interval = 1\n", "console.refesh_interval", "refresh_interval"),
    ("[health]\ntimeuot = 1\n", "health.timeuot", "timeout"),
    ("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\nhealth_ulr = 'x'\n",
     "services[0].health_ulr", "health_url"),
    ("[kubernetes]\nnamespace = ['a']\n", "kubernetes.namespace", "namespaces"),
    ("[prometheus]\nurll = 'http://a'\n", "prometheus.urll", "url"),
    ("[alertmanager]\nack_minute = 1\n", "alertmanager.ack_minute", "ack_minutes"),
    ("[ports]\nregistery = 'x'\n", "ports.registery", "registry"),
    ("[rules]\nerror_rate = { warning = 1, critical = 2 }\n", "rules.error_rate",
     "error_rate_percent"),
    ("[rules]\np95_seconds = { warning = 1, critical = 2, rolback = 3 }\n",
     "rules.p95_seconds.rolback", "rollback"),
    ("[guard]\nmodes = 'auto'\n", "guard.modes", "mode"),
    ("[guard]\np95_seconds = { threshold = 1, limits = 2 }\n", "guard.p95_seconds.limits", "limit"),
    ("[notify]\nbackof_seconds = [1]\n", "notify.backof_seconds", "backoff_seconds"),
    ("[[notify.channels]]\nname = 'a'\nkind = 'slack'\nurl_ = 'http://a'\n",
     "notify.channels[0].url_", "url"),
    ("[[notify.routes]]\nrole = 'ops'\nevent = ['*']\n", "notify.routes[0].event", "events"),
    ("[incidents]\ndefault_severty = 'P1'\n", "incidents.default_severty", "default_severity"),
    ("[postmortem]\noutput = 'x'\n", "postmortem.output", "output_dir"),
    ("[store]\npaht = 'x'\n", "store.paht", "path"),
]


@pytest.mark.parametrize(("text", "path", "suggestion"), UNKNOWN, ids=[c[1] for c in UNKNOWN])
def test_unknown_key_did_you_mean(text: str, path: str, suggestion: str) -> None:
    problem = one_problem(text)
    assert problem == f"{path}: unknown key — did you mean {suggestion!r}?"


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    problem = one_problem("[postmortem]\nzzzzzz = 1\n")
    assert problem == "postmortem.zzzzzz: unknown key (known keys: output_dir)"


def test_internal_field_is_not_a_config_key() -> None:
    problem = one_problem("source_path = '/x'\n")
    assert problem.startswith("source_path: unknown key")


def test_odd_key_names_are_quoted_in_the_path() -> None:
    problem = one_problem("[console]\n\"refresh interval\" = 1\n")
    assert problem.startswith("console.'refresh interval': unknown key")


MISSING = [
    (services(1) + "[[services]]\nhealth_url = 'http://a/h'\n", "services[1].name"),
    ("[[services]]\nname = 'a'\n", "services[0].health_url"),
    ("[rules]\nerror_rate_percent = { warning = 1 }\n", "rules.error_rate_percent.critical"),
    ("[guard]\np95_seconds = { limit = 2 }\n", "guard.p95_seconds.threshold"),
    ("[[notify.channels]]\nname = 'a'\n", "notify.channels[0].kind"),
    ("[[notify.channels]]\nkind = 'slack'\n", "notify.channels[0].name"),
    ("[[notify.routes]]\nchannels = []\n", "notify.routes[0].role"),
]


@pytest.mark.parametrize(("text", "path"), MISSING, ids=[c[1] for c in MISSING])
def test_missing_required_key(text: str, path: str) -> None:
    assert one_problem(text) == f"{path}: required key is missing"


def test_several_missing_keys_are_all_named() -> None:
    found = problems("[[services]]\nteam = 'x'\n")
    assert found == ["services[0].name: required key is missing",
                     "services[0].health_url: required key is missing"]


BAD_URLS = ["htp:/x", "127.0.0.1:8080/health", "ftp://host/x", "http://", "http:///path",
            "http://host:99999/health", "not a url"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_health_url(url: str) -> None:
    assert one_problem(f"[[services]]\nname = 'a'\nhealth_url = {url!r}\n") == (
        f"services[0].health_url: not a valid http(s) URL: {url!r}")


def test_bad_url_key_paths_in_later_services() -> None:
    text = services(3) + "[[services]]\nname = 'x'\nhealth_url = 'htp:/x'\n"
    assert one_problem(text) == "services[3].health_url: not a valid http(s) URL: 'htp:/x'"
    for key in ("live_url", "ready_url", "metrics_url"):
        text = services(1) + f"[[services]]\nname = 'x'\nhealth_url = 'http://a/h'\n{key} = 'x'\n"
        assert one_problem(text) == f"services[1].{key}: not a valid http(s) URL: 'x'"


@pytest.mark.parametrize("section", ["prometheus", "alertmanager"])
def test_bad_source_url(section: str) -> None:
    assert one_problem(f"[{section}]\nurl = 'localhost:9090'\n") == (
        f"{section}.url: not a valid http(s) URL: 'localhost:9090'")


def test_empty_optional_url_is_allowed() -> None:
    s = cfg("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\nlive_url = ''\n[prometheus]\nurl = ''\n")
    assert s.services[0].live_url == ""
    assert s.prometheus.url == ""


def test_bad_secret_url_is_masked_in_the_message() -> None:
    problem = one_problem("[[notify.channels]]\nname = 'a'\nkind = 'slack'\n"
                          "url = 'hooks-slack-T0-sekrit'\n")
    assert problem == "notify.channels[0].url: not a valid http(s) URL: ***"
    assert "sekrit" not in problem


def test_deployment_pattern() -> None:
    assert cfg(services(0) + "[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\n"
               "deployment = 'shop/a'\n").services[0].deployment == "shop/a"
    problem = one_problem("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\n"
                          "deployment = 'checkout'\n")
    assert problem.startswith("services[0].deployment: 'checkout' does not have the expected form")


def test_ports_allowed_range_pattern() -> None:
    problem = one_problem("[ports]\nallowed = { dev = '3000..3999' }\n")
    assert problem.startswith("ports.allowed.dev: '3000..3999' does not have the expected form")


# --- environment variables --------------------------------------------------------------------


def test_env_var_present() -> None:
    s = cfg("[prometheus]\nurl = '${PROM_URL}'\ntoken = 'Bearer ${PROM_TOKEN}'\n",
            {"PROM_URL": "http://prom.internal:9090", "PROM_TOKEN": "t0k"})
    assert s.prometheus.url == "http://prom.internal:9090"
    assert s.prometheus.token.reveal() == "Bearer t0k"


def test_env_var_missing_names_the_key_and_the_variable() -> None:
    problem = one_problem(services(2) + "[[services]]\nname = 'x'\nhealth_url = '${X_HEALTH}'\n")
    assert problem == ("services[2].health_url: environment variable X_HEALTH is not set "
                       "(set it, or write ${X_HEALTH:-default})")


def test_env_var_default() -> None:
    s = cfg("[console]\ntheme = '${THEME:-light}'\nlayout = '${LAYOUT:-grid}'\n"
            "[alertmanager]\ntoken = '${AM_TOKEN:-}'\n")
    assert s.console.theme == "light"
    assert s.console.layout == "grid"  # interpolated before the Literal check
    assert s.alertmanager.token.reveal() == ""
    assert not s.alertmanager.token
    s = cfg("[console]\ntheme = '${THEME:-light}'\n", {"THEME": "high-contrast"})
    assert s.console.theme == "high-contrast"


def test_env_var_default_applies_when_set_but_empty() -> None:
    # shell semantics: ${X:-d} is d when X is unset *or* empty
    s = cfg("[console]\ntheme = '${THEME:-light}'\n", {"THEME": ""})
    assert s.console.theme == "light"
    # without a default an empty variable is still a value
    assert cfg("[console]\noperator = '${OP}'\n", {"OP": ""}).console.operator == ""


def test_env_var_in_lists_tables_and_raw_sections() -> None:
    env = {"NS": "shop", "TOKEN": "abc", "HOST": "10.1.1.1"}
    s = cfg("[kubernetes]\nnamespaces = ['${NS}', 'web']\n"
            "[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\n"
            "headers = { X-Token = '${TOKEN}' }\n"
            "[ports.allocations.a.prod]\nhost = '${HOST}'\nstart = 1\n", env)
    assert s.kubernetes.namespaces == ("shop", "web")
    assert s.services[0].headers["X-Token"].reveal() == "abc"
    assert s.ports.allocations["a"]["prod"]["host"] == "10.1.1.1"
    problem = one_problem("[ports.allocations.a.prod]\nhost = '${NOPE}'\n")
    assert problem.startswith("ports.allocations.a.prod.host: environment variable NOPE is not set")


def test_env_var_then_url_check() -> None:
    problem = one_problem("[[services]]\nname = 'a'\nhealth_url = '${H}'\n", {"H": "nope"})
    assert problem == "services[0].health_url: not a valid http(s) URL: 'nope'"


def test_process_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYTUI_TEST_THEME", "colorblind")
    s = parse_config("[console]\ntheme = '${DEPLOYTUI_TEST_THEME}'\n")
    assert s.console.theme == "colorblind"


# --- Literal values, bounds, cross-field checks ------------------------------------------------

LITERALS = [
    ("[console]\nlayout = 'gird'\n", "console.layout",
     "must be one of 'auto', 'grid', 'stacked', 'tabs', got 'gird' — did you mean 'grid'?"),
    ("[guard]\nmode = 'automatic'\n", "guard.mode",
     "must be one of 'off', 'propose', 'auto', got 'automatic' — did you mean 'auto'?"),
    ("[[notify.channels]]\nname = 'a'\nkind = 'slak'\n", "notify.channels[0].kind",
     "must be one of 'slack', 'teams', 'pagerduty', 'webhook', got 'slak' — did you mean 'slack'?"),
    ("[incidents]\ndefault_severity = 'P9'\n", "incidents.default_severity",
     "must be one of 'P1', 'P2', 'P3', 'P4', got 'P9'"),
    ("[console]\nlayout = 2\n", "console.layout",
     "must be one of 'auto', 'grid', 'stacked', 'tabs', got 2"),
]


@pytest.mark.parametrize(("text", "path", "what"), LITERALS, ids=[c[1] for c in LITERALS])
def test_literal_values(text: str, path: str, what: str) -> None:
    problem = one_problem(text)
    assert problem.startswith(f"{path}: {what}"), problem


@pytest.mark.parametrize("layout", ["auto", "grid", "stacked", "tabs"])
def test_every_layout_is_accepted(layout: str) -> None:
    assert cfg(f"[console]\nlayout = '{layout}'\n").console.layout == layout


@pytest.mark.parametrize("mode", ["off", "propose", "auto"])
def test_every_guard_mode_is_accepted(mode: str) -> None:
    assert cfg(f"[guard]\nmode = '{mode}'\n").guard.mode == mode


@pytest.mark.parametrize("kind", ["slack", "teams", "pagerduty", "webhook"])
def test_every_channel_kind_is_accepted(kind: str) -> None:
    assert cfg(f"[[notify.channels]]\nname = 'c'\nkind = '{kind}'\n").notify.channels[0].kind == kind


BOUNDS = [
    ("[console]\nrefresh_interval = 0.1\n", "console.refresh_interval: must be at least 0.2, got 0.1"),
    ("[console]\nrefresh_interval = 3601\n",
     "console.refresh_interval: must be at most 3600, got 3601.0"),
    ("[console]\nstale_after_intervals = 0\n", "console.stale_after_intervals: must be at least 1, got 0"),
    ("[console]\nwall_rotate_seconds = -1\n", "console.wall_rotate_seconds: must be at least 0, got -1.0"),
    ("[health]\nconcurrency = 100000\n", "health.concurrency: must be at most 10000, got 100000"),
    ("[health]\ntimeout = 0\n", "health.timeout: must be at least 0.05, got 0.0"),
    ("[health]\navailability_target = 101\n", "health.availability_target: must be at most 100, got 101.0"),
    ("[health]\nmax_body_bytes = 10\n", "health.max_body_bytes: must be at least 256, got 10"),
    ("[kubernetes]\nlease_duration_seconds = 0\n",
     "kubernetes.lease_duration_seconds: must be at least 1, got 0"),
    ("[prometheus]\ntimeout = 0\n", "prometheus.timeout: must be at least 0.1, got 0.0"),
    ("[alertmanager]\nack_minutes = 0\n", "alertmanager.ack_minutes: must be at least 1, got 0.0"),
    ("[ports]\nprobe_timeout = 0\n", "ports.probe_timeout: must be at least 0.01, got 0.0"),
    ("[rules]\nhysteresis = 1\n", "rules.hysteresis: must be at most 0.9, got 1.0"),
    ("[guard]\nwindow_minutes = 0\n", "guard.window_minutes: must be at least 1, got 0.0"),
    ("[guard]\np95_seconds = { threshold = 1, limit = 0 }\n",
     "guard.p95_seconds.limit: must be at least 1, got 0"),
    ("[[notify.channels]]\nname = 'a'\nkind = 'slack'\ntimeout = 0\n",
     "notify.channels[0].timeout: must be at least 0.1, got 0.0"),
    ("[incidents]\nauto_close_minutes = -5\n", "incidents.auto_close_minutes: must be at least 0, got -5.0"),
    ("[store]\nretention_days = 0\n", "store.retention_days: must be at least 1, got 0.0"),
]


@pytest.mark.parametrize(("text", "expected"), BOUNDS, ids=[c[1].split(":")[0] for c in BOUNDS])
def test_numeric_bounds(text: str, expected: str) -> None:
    assert one_problem(text) == expected


def test_bounds_are_inclusive() -> None:
    s = cfg("[console]\nrefresh_interval = 0.2\n[health]\nconcurrency = 10000\n")
    assert (s.console.refresh_interval, s.health.concurrency) == (0.2, 10000)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    # nan compares false with every bound, so without an explicit check it would slip through
    for text, path in ((f"[console]\nrefresh_interval = {value}\n", "console.refresh_interval"),
                       (f"[health]\nwindow_seconds = {value}\n", "health.window_seconds"),
                       (f"[rules]\np95_seconds = {{ warning = {value}, critical = 1 }}\n",
                        "rules.p95_seconds.warning")):
        problem = one_problem(text)
        assert problem.startswith(f"{path}: "), problem
        assert "finite" in problem or "at least" in problem or "at most" in problem


def test_finite_numbers_still_load() -> None:
    assert math.isfinite(cfg("[health]\nwindow_seconds = 1e6\n").health.window_seconds)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        cfg("[console]\nrefresh_interval = 0.1\nlayuot = 'grid'\n[health]\nconcurrency = 100000\n")
    err = info.value
    assert err.problems == [
        "console.refresh_interval: must be at least 0.2, got 0.1",
        "console.layuot: unknown key — did you mean 'layout'?",
        "health.concurrency: must be at most 10000, got 100000",
    ]
    text = str(err)
    assert text.startswith(f"{SOURCE}: 3 problems:\n")
    assert "\n\n" not in text  # one paragraph


def test_duplicate_service_in_one_env() -> None:
    text = services(2) + "[[services]]\n" + SVC.format(name="svc0", env="prod")
    assert one_problem(text) == "services[2].name: 'svc0' in env 'prod' is already defined by services[0]"


def test_same_service_name_in_two_envs_is_fine() -> None:
    s = cfg(services(2, "prod") + services(2, "staging"))
    assert [svc.key for svc in s.services] == ["prod/svc0", "prod/svc1", "staging/svc0",
                                               "staging/svc1"]


def test_route_naming_an_unknown_channel() -> None:
    text = ("[[notify.channels]]\nname = 'ops-slack'\nkind = 'slack'\n"
            "[[notify.routes]]\nrole = 'ops'\nchannels = ['ops-slack', 'ops-slak']\n"
            "[[notify.routes]]\nrole = 'dev'\nchannels = ['pager']\n")
    assert problems(text) == [
        "notify.routes[0].channels[1]: no channel named 'ops-slak' — did you mean 'ops-slack'?",
        "notify.routes[1].channels[0]: no channel named 'pager'",
    ]


def test_duplicate_channel_name() -> None:
    text = ("[[notify.channels]]\nname = 'ops'\nkind = 'slack'\n"
            "[[notify.channels]]\nname = 'ops'\nkind = 'pagerduty'\n")
    assert one_problem(text) == "notify.channels[1].name: 'ops' is already defined by notify.channels[0]"


@pytest.mark.parametrize("name", ["error_rate_percent", "p95_seconds", "memory_percent",
                                  "restarts_per_minute"])
def test_levels_out_of_order(name: str) -> None:
    assert one_problem(f"[rules]\n{name} = {{ warning = 5.0, critical = 1.0 }}\n") == (
        f"rules.{name}: critical (1.0) is below warning (5.0)")
    assert one_problem(f"[rules]\n{name} = {{ warning = 1.0, critical = 5.0, rollback = 2.0 }}\n") == (
        f"rules.{name}: rollback (2.0) is below critical (5.0)")
    # equal levels are in order
    assert cfg(f"[rules]\n{name} = {{ warning = 1, critical = 1, rollback = 1 }}\n")


def test_latency_alert_below_target() -> None:
    assert one_problem("[health]\nlatency_target_ms = 800\nlatency_alert_ms = 500\n") == (
        "health.latency_alert_ms: is below health.latency_target_ms")


def test_availability_alert_above_target() -> None:
    assert one_problem("[health]\navailability_target = 99.0\navailability_alert = 99.9\n") == (
        "health.availability_alert: is above health.availability_target")


# --- files -------------------------------------------------------------------------------------


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[console\nrefresh_interval = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path.resolve()}: not valid TOML: ")
    assert "line 1" in message
    assert info.value.path == str(path.resolve())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: file not found (create one with `deploytui init`)"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read the file")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[console]\ntheme = 'd\xe9faut'\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "UTF-8" in str(info.value)


def test_load_config_records_the_source(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(services(1), encoding="utf-8")
    s = load_config(path)
    assert s.source_path == str(path.resolve())
    assert s.base_dir == path.resolve().parent
    assert s.postmortem_dir == path.resolve().parent / "postmortems"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = Path(__import__("os").environ["XDG_CONFIG_HOME"])
    default = xdg / "deploytui" / "config.toml"
    assert find_config_path(None) is None  # nothing anywhere
    default.parent.mkdir(parents=True)
    default.write_text("", encoding="utf-8")
    assert find_config_path(None) == default
    monkeypatch.setenv("DEPLOYTUI_CONFIG", str(tmp_path / "env.toml"))
    assert find_config_path(None) == tmp_path / "env.toml"
    assert find_config_path(str(tmp_path / "explicit.toml")) == tmp_path / "explicit.toml"


# --- secrets -----------------------------------------------------------------------------------

SECRET_VALUE = "s3cr3t-Zq9xWv"

SECRET_CONFIG = f"""
[prometheus]
url = "http://127.0.0.1:9090"
token = "${{SECRET_TOKEN}}"
[alertmanager]
url = "http://127.0.0.1:9093"
token = "{SECRET_VALUE}-am"
[[services]]
name = "a"
health_url = "http://127.0.0.1:1/health"
headers = {{ Authorization = "Bearer ${{SECRET_TOKEN}}" }}
[[notify.channels]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/{SECRET_VALUE}"
[[notify.channels]]
name = "pager"
kind = "pagerduty"
routing_key = "${{SECRET_TOKEN}}"
"""


def test_secrets_never_in_str_or_repr() -> None:
    s = cfg(SECRET_CONFIG, {"SECRET_TOKEN": SECRET_VALUE})
    # the values are there, for the code that sends them ...
    assert s.prometheus.token.reveal() == SECRET_VALUE
    assert s.alertmanager.token.reveal() == f"{SECRET_VALUE}-am"
    assert s.services[0].headers["Authorization"].reveal() == f"Bearer {SECRET_VALUE}"
    assert s.notify.channels[0].url.reveal().endswith(SECRET_VALUE)
    assert s.notify.channels[1].routing_key.reveal() == SECRET_VALUE
    # ... but no way of printing them shows them
    shown = [str(s), repr(s), f"{s}", str(s.notify), repr(s.notify.channels),
             str(s.services[0]), repr(s.services[0].headers), str(s.prometheus.token),
             repr(s.prometheus.token), f"{s.alertmanager.token}"]
    for text in shown:
        assert SECRET_VALUE not in text
    assert "https://hooks.slack.com/***" in repr(s)
    assert "***" in str(s.prometheus.token)


def test_secret_behaviour() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert not Secret("")
    assert Secret("x")
    assert str(Secret("")) == ""
    assert str(Secret("hunter2")) == "***"


def test_mask() -> None:
    assert mask("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/***"
    assert mask("http://user:pw@alerts.internal:9093/path?token=x") == "http://alerts.internal/***"
    assert mask("Bearer abc") == "***"
    assert mask("ftp://host/x") == "***"
    assert mask("") == ""


# --- small helpers -----------------------------------------------------------------------------


def test_service_key() -> None:
    svc = ServiceSettings(name="checkout", health_url="http://a/h", env="staging")
    assert svc.key == "staging/checkout"


def test_operator_identity() -> None:
    assert operator_identity(cfg("[console]\noperator = 'alice@ops'\n")) == "alice@ops"
    default = operator_identity(cfg(""))
    assert "@" in default and default == operator_identity(None)


def test_with_changes_and_resolve_path(tmp_path: Path) -> None:
    s = cfg("")
    changed = s.with_changes(postmortem=dataclasses.replace(s.postmortem, output_dir="/abs/pm"))
    assert changed.postmortem_dir == Path("/abs/pm")
    assert s.postmortem.output_dir == "./postmortems"
    assert s.resolve_path("~/x") == Path.home() / "x"


def test_notify_channel_defaults() -> None:
    ch = NotifyChannel(name="a", kind="webhook")
    assert not ch.url and not ch.routing_key
    assert ch.timeout == 10.0


def test_a_secret_of_the_wrong_type_is_not_echoed() -> None:
    for text, path in (("[prometheus]\ntoken = 918273645\n", "prometheus.token"),
                       ("[[notify.channels]]\nname = 'p'\nkind = 'pagerduty'\nrouting_key = 918273645\n",
                        "notify.channels[0].routing_key"),
                       ("[[services]]\nname = 'a'\nhealth_url = 'http://a/h'\n"
                        "headers = { X-Key = 918273645 }\n", "services[0].headers.X-Key")):
        problem = one_problem(text)
        assert problem == f"{path}: expected a string, got an integer"
        assert "918273645" not in problem


@pytest.mark.parametrize("value", ["5999-5000", "0-100", "5000-70000"])
def test_ports_allowed_range_bounds(value: str) -> None:
    assert one_problem(f"[ports]\nallowed = {{ prod = '{value}' }}\n") == (
        f"ports.allowed.prod: {value!r} is not a port range (start-end, 1 <= start <= end <= 65535)")


def test_ports_allowed_single_port_range() -> None:
    assert dict(cfg("[ports]\nallowed = { prod = '5000-5000' }\n").ports.allowed) == {"prod": "5000-5000"}
