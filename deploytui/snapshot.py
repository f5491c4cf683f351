"""``deploytui snapshot``: poll every configured source once, print what each pane would show.

JSON shape (stable; documented in the README)::

    {"schema": 1, "taken_at": "<ISO-8601>", "config": "<path or null>", "ok": bool,
     "health":   {"configured": bool, "ok": bool, "error": str|null, "taken_at": str,
                  "summary": {...}, "columns": [...], "rows": [{...}, ...]},
     "rollouts": {...same keys...}, "ports": {...}, "alerts": {...}}

Exit codes: 0 everything healthy, 1 anything is not, 2 a source could not be read / no run.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from deploytui.config import Settings
from deploytui.model import Section

__all__ = ["PANES", "collect", "exit_code", "render_json", "render_text"]

#: pane name -> module offering ``async def snapshot_section(settings) -> Section``
PANES: Mapping[str, str] = {
    "health": "deploytui.sources.health",
    "rollouts": "deploytui.sources.kube",
    "ports": "deploytui.sources.ports",
    "alerts": "deploytui.sources.alerts",
}


async def _one(name: str, module: str, settings: Settings) -> Section:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:  # that pane is not built in this checkout
            return Section(name=name, configured=False)
        return Section(name=name, configured=True, ok=False,
                       error=f"cannot load {module}: {exc.__class__.__name__}: {exc}")
    except Exception as exc:  # a broken module is an error, never "not configured"
        return Section(name=name, configured=True, ok=False,
                       error=f"cannot load {module}: {exc.__class__.__name__}: {exc}")
    provider = getattr(mod, "snapshot_section", None)
    if provider is None:
        return Section(name=name, configured=False)
    try:
        return await provider(settings)
    except Exception as exc:  # one broken source must not hide the others
        return Section(name=name, configured=True, ok=False,
                       error=f"{exc.__class__.__name__}: {exc}")


async def collect(settings: Settings) -> dict[str, Section]:
    results = await asyncio.gather(*(_one(n, m, settings) for n, m in PANES.items()))
    return dict(zip(PANES, results, strict=True))


def exit_code(sections: Mapping[str, Section]) -> int:
    if any(s.configured and s.error for s in sections.values()):
        return 2
    return 0 if all(s.ok for s in sections.values()) else 1


def render_json(sections: Mapping[str, Section], settings: Settings) -> str:
    doc: dict[str, Any] = {
        "schema": 1,
        "taken_at": datetime.fromtimestamp(time.time(), UTC).isoformat(),
        "config": settings.source_path or None,
        "ok": all(s.ok for s in sections.values()) and not any(s.error for s in sections.values()),
    }
    for name, section in sections.items():
        doc[name] = section.to_json()
    return json.dumps(doc, indent=2, default=str)


def render_text(sections: Mapping[str, Section], console: Console) -> None:
    for name, section in sections.items():
        title = name.upper()
        if not section.configured:
            console.print(f"[bold]{title}[/]  not configured")
            console.print()
            continue
        status = "ERROR" if section.error else ("OK" if section.ok else "NOT OK")
        summary = "  ".join(f"{k}={v}" for k, v in section.summary.items())
        console.print(f"[bold]{title}[/]  {status}  {escape(summary)}".rstrip())
        if section.error:  # outside text: never read as Rich markup
            console.print(Text(f"  could not read: {section.error}"))
        if section.rows:
            table = Table(box=None, pad_edge=False, show_edge=False)
            for col in section.columns:
                table.add_column(escape(col.upper()))
            for row in section.rows:
                table.add_row(*(Text(_cell(row.get(col))) for col in section.columns))
            console.print(table)
        elif not section.error:
            console.print("  (nothing to show)")
        console.print()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
