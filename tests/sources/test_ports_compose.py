"""docker-compose ``ports:`` in every syntax compose accepts, read from real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploytui.errors import ConfigError
from deploytui.sources.ports_compose import ComposePort, load_compose_file, parse_port_spec


@pytest.mark.parametrize(("spec", "expected"), [
    ("3050", ComposePort(target=(3050, 3050))),
    (3050, ComposePort(target=(3050, 3050))),
    ("3050:3000", ComposePort(target=(3000, 3000), published=(3050, 3050))),
    ("127.0.0.1:3050:3000/udp",
     ComposePort(target=(3000, 3000), published=(3050, 3050), host_ip="127.0.0.1", protocol="udp")),
    ("3000-3005:3000-3005", ComposePort(target=(3000, 3005), published=(3000, 3005))),
    ("8000-8010:80", ComposePort(target=(80, 80), published=(8000, 8010))),
    ("[::1]:3050:3000", ComposePort(target=(3000, 3000), published=(3050, 3050), host_ip="::1")),
    ("127.0.0.1::3000", ComposePort(target=(3000, 3000), host_ip="127.0.0.1")),
    ("6060:6060/SCTP", ComposePort(target=(6060, 6060), published=(6060, 6060), protocol="sctp")),
    ({"target": 3000, "published": 3050, "host_ip": "127.0.0.1", "protocol": "udp", "mode": "host"},
     ComposePort(target=(3000, 3000), published=(3050, 3050), host_ip="127.0.0.1", protocol="udp",
                 mode="host")),
    ({"target": 80, "published": "8080-8081", "name": "web", "app_protocol": "http"},
     ComposePort(target=(80, 80), published=(8080, 8081))),
    ({"target": 80}, ComposePort(target=(80, 80))),
])
def test_every_port_syntax(spec: object, expected: ComposePort) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("3050:3000/tcpx", "unknown protocol"),
    ("70000:3000", "outside 1-65535"),
    ("3005-3000:80", "starts after it ends"),
    ("3000-3002:3000-3005", "published range has 3 ports"),
    ("a:b", "not a port"),
    ("::1:3050:3000", "brackets"),
    ({"published": 3050}, "needs 'target'"),
    ({"target": 80, "bogus": 1}, "unknown key"),
    ({"target": 80, "mode": "sideways"}, "ingress or host"),
    (True, "expected a port"),
])
def test_bad_port_specs_say_why(spec: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_port_spec(spec)


COMPOSE = """\
# every ports: form compose accepts
services:
  web:
    image: nginx
    ports:
      - "3050:3000"
      - 3051:3000              # unquoted: compose reads this as a string, not base-60
      - "127.0.0.1:3052:3000/udp"
      - "3060-3062:3060-3062"
      - "[::1]:3070:3000"
      - "3080"                 # ephemeral host port: claims nothing
      - target: 3000
        published: "3090-3091"
        host_ip: 0.0.0.0
        protocol: tcp
        mode: host
  api:
    ports:
      - "${API_PORT:-3100}:8080"
      - "${MISSING_PORT}:8080"
      - "nope"
  db:
    image: postgres
"""


def test_compose_file_allocations(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    allocs = load_compose_file(path, "docker-compose.yml", known_envs={"dev", "prod"}, environ={})
    good = [(a.service, a.start, a.end, a.protocol, a.host, a.target, a.key)
            for a in allocs if a.valid]
    assert good == [
        ("web", 3050, 3050, "tcp", "", "3000", "services.web.ports[0]"),
        ("web", 3051, 3051, "tcp", "", "3000", "services.web.ports[1]"),
        ("web", 3052, 3052, "udp", "127.0.0.1", "3000", "services.web.ports[2]"),
        ("web", 3060, 3062, "tcp", "", "3060-3062", "services.web.ports[3]"),
        ("web", 3070, 3070, "tcp", "::1", "3000", "services.web.ports[4]"),
        ("web", 3090, 3091, "tcp", "0.0.0.0", "3000", "services.web.ports[6]"),
        ("api", 3100, 3100, "tcp", "", "8080", "services.api.ports[0]"),
    ]
    bad = {a.key: a.error for a in allocs if not a.valid}
    assert set(bad) == {"services.api.ports[1]", "services.api.ports[2]"}
    assert "MISSING_PORT is not set" in bad["services.api.ports[1]"]
    assert all(a.env == "dev" and a.source == "compose" for a in allocs)
    assert allocs[0].where == "docker-compose.yml: services.web.ports[0]"


def test_dotenv_and_environment_interpolation(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nAPI_PORT=3200\nexport OTHER='3300'\n")
    path = tmp_path / "compose.yaml"
    path.write_text('services:\n  api:\n    ports: ["${API_PORT}:80", "$OTHER:81", "${X-3400}:82"]\n')
    got = [a.start for a in load_compose_file(path, "compose.yaml", environ={"X": ""})]
    # ${X-default} keeps a set-but-empty X: ":82" is an ephemeral port, which claims nothing
    assert got == [3200, 3300]
    got = [a.start for a in load_compose_file(path, "compose.yaml", environ={"API_PORT": "3201"})]
    assert got == [3201, 3300, 3400]


def test_env_from_extension_field_then_file_name(tmp_path: Path) -> None:
    ext = tmp_path / "stack.yml"
    ext.write_text("x-deploytui:\n  env: prod\nservices:\n  a:\n    ports: ['5050:80']\n")
    named = tmp_path / "docker-compose.staging.yml"
    named.write_text("services:\n  a:\n    ports: ['4050:80']\n")
    assert load_compose_file(ext, "stack.yml")[0].env == "prod"
    assert load_compose_file(named, "x", known_envs={"staging", "prod"})[0].env == "staging"


@pytest.mark.parametrize(("text", "says"), [
    ("services: [a, b]\n", "services: expected a mapping"),
    ("services:\n  web: 3\n", "services.web: expected a mapping"),
    ("services:\n  web:\n    ports: '3050:3000'\n", "services.web.ports: expected a list"),
    ("services:\n  web: {ports: [\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping with 'services'"),
])
def test_bad_compose_files_name_file_and_entry(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says) as info:
        load_compose_file(path, "deploy/docker-compose.yml")
    assert info.value.path == "deploy/docker-compose.yml"


def test_missing_compose_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="compose file not found"):
        load_compose_file(tmp_path / "nope.yml", "nope.yml")
