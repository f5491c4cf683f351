"""``config.example.toml`` validates and documents every key of the schema."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import deploytui.config as config_module
from deploytui.config import Settings, load_config, parse_config

_KEY = re.compile(r'^\s*("[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+)(\s*\.\s*("[^"]*"|[A-Za-z0-9_-]+))*\s*=')
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


@pytest.fixture
def example(repo_root: Path) -> Path:
    return repo_root / "config.example.toml"


def _strip_strings(line: str) -> str:
    """The line with quoted strings (and a trailing comment) removed, for bracket counting."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, kind, text) with kind one of blank / comment / header / key / cont."""
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        if depth > 0:
            kind = "cont"
        elif not line.strip():
            kind = "blank"
        elif line.lstrip().startswith("#"):
            kind = "comment"
        elif _HEADER.match(line):
            kind = "header"
        elif _KEY.match(line):
            kind = "key"
        else:
            raise AssertionError(f"config.example.toml:{number}: unexpected line {line!r}")
        if kind in ("key", "cont"):
            bare = _strip_strings(line)
            depth += bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")
        yield number, kind, line


def test_example_validates_with_its_env_vars_unset(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    settings = parse_config(text, source=str(example), environ={})
    assert settings.services, "the example shows at least one service"
    assert settings.notify.channels and settings.notify.routes
    assert settings.ports.allocations


def test_example_loads_from_disk(example: Path) -> None:
    settings = load_config(example)
    assert settings.source_path == str(example.resolve())


def test_every_env_var_in_the_example_has_a_default(example: Path) -> None:
    data_lines = [line for _, kind, line in _lines(example.read_text(encoding="utf-8"))
                  if kind in ("key", "cont")]
    found = _ENV.findall("\n".join(data_lines))
    assert found, "the example shows ${ENV_VAR} interpolation"
    without_default = [name for name, default in found if not default]
    assert without_default == [], f"give these a :- default so the example loads: {without_default}"


def test_every_key_in_the_example_has_a_comment(example: Path) -> None:
    """A key is documented by a comment heading its block (the comment line directly above it,
    or above the run of keys it belongs to), or by a comment directly above its table header."""
    text = example.read_text(encoding="utf-8")
    documented_tables: set[str] = set()
    table = ""
    block_has_comment = False
    previous = "blank"
    undocumented: list[str] = []
    for number, kind, line in _lines(text):
        if kind == "header":
            match = _HEADER.match(line)
            assert match
            table = re.sub(r"\s+", "", match.group(1))
            if previous == "comment":
                documented_tables.add(table)
            block_has_comment = False
        elif kind == "comment":
            block_has_comment = True
        elif kind == "blank":
            block_has_comment = False
        elif kind == "key":
            if not block_has_comment and table not in documented_tables:
                key = line.split("=", 1)[0].strip()
                undocumented.append(f"line {number}: [{table}] {key}")
        if kind != "cont":
            previous = kind
    assert undocumented == [], "keys without a comment above them:\n" + "\n".join(undocumented)


def _dataclass_of(tp: Any) -> type | None:
    """The settings dataclass inside a field type (``X``, ``tuple[X, ...]``, ``X | None``)."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    for arg in typing.get_args(tp):
        found = _dataclass_of(arg)
        if found is not None:
            return found
    return None


def _schema_fields() -> dict[type, list[str]]:
    """Every settings dataclass reachable from Settings, with its public field names."""
    out: dict[type, list[str]] = {}
    todo: list[type] = [Settings]
    while todo:
        cls = todo.pop()
        if cls in out:
            continue
        hints = typing.get_type_hints(cls, vars(config_module))
        names = []
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            names.append(f.name)
            inner = _dataclass_of(hints[f.name])
            if inner is not None:
                todo.append(inner)
        out[cls] = names
    return out


def _tables_by_type(data: dict[str, Any]) -> dict[type, list[dict[str, Any]]]:
    """Every table of the example, grouped by the settings dataclass it is read into."""
    out: dict[type, list[dict[str, Any]]] = {}

    def walk(cls: type, table: dict[str, Any]) -> None:
        out.setdefault(cls, []).append(table)
        hints = typing.get_type_hints(cls, vars(config_module))
        for f in dataclasses.fields(cls):
            inner = _dataclass_of(hints[f.name])
            value = table.get(f.name)
            if inner is None or value is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    walk(inner, item)

    walk(Settings, data)
    return out


def test_schema_walk_sees_every_section() -> None:
    fields = _schema_fields()
    names = {cls.__name__ for cls in fields}
    assert {"Settings", "ConsoleSettings", "ServiceSettings", "NotifyChannel", "NotifyRoute",
            "Levels", "GuardCriterion", "PortsSettings"} <= names
    assert "source_path" not in fields[Settings]


def test_every_schema_field_is_in_the_example(example: Path) -> None:
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    tables = _tables_by_type(data)
    missing: list[str] = []
    for cls, names in _schema_fields().items():
        present = tables.get(cls, [])
        for name in names:
            if not any(name in table for table in present):
                missing.append(f"{cls.__name__}.{name}")
    assert missing == [], f"schema fields not shown in config.example.toml: {missing}"


def test_every_example_key_is_in_the_schema(example: Path) -> None:
    """The converse, stated positively: the loader accepted the file, so no key is unknown;
    and the schema walk found a table for every section the example writes."""
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    top = {f.name for f in dataclasses.fields(Settings) if not f.metadata.get("internal")}
    assert set(data) <= top
    assert set(data) == top, f"sections not shown in the example: {sorted(top - set(data))}"
