"""Dependencies point one way: nothing outside ``deploytui/ui/`` imports ``textual``.

Every module of the package except the UI is imported in a fresh interpreter, which must not
have ``textual`` loaded afterwards; and no source file outside ``deploytui/ui/`` has an
``import textual`` / ``from textual ...`` statement, not even inside a function. Modules are
found by walking the package, so the check grows with the tree.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "deploytui"
UI = PACKAGE / "ui"

# Domain modules the design names; each must be found by the walk once it exists.
DOMAIN = ("deploytui.config", "deploytui.model", "deploytui.errors", "deploytui.snapshot",
          "deploytui.runtime", "deploytui.starter", "deploytui.store", "deploytui.rules",
          "deploytui.guard", "deploytui.notify", "deploytui.postmortem", "deploytui.incidents",
          "deploytui.sources", "deploytui.actions", "deploytui.demo", "deploytui.cli")


def _walk(path: Path, prefix: str) -> list[str]:
    """Module names under a package folder, without importing anything (pkgutil on folders)."""
    names: list[str] = []
    for info in pkgutil.iter_modules([str(path)]):
        if info.name == "__main__":  # running it is not importing it
            continue
        name = f"{prefix}.{info.name}"
        child = path / info.name
        if child == UI:
            continue
        names.append(name)
        if info.ispkg:
            names.extend(_walk(child, name))
    return names


MODULES = ["deploytui", *_walk(PACKAGE, "deploytui")]


def test_the_walk_finds_the_domain_modules() -> None:
    present = [m for m in DOMAIN if (PACKAGE / Path(*m.split(".")[1:])).with_suffix(".py").exists()
               or (PACKAGE / Path(*m.split(".")[1:]) / "__init__.py").exists()]
    assert "deploytui.config" in present and "deploytui.cli" in present
    missing = sorted(set(present) - set(MODULES))
    assert missing == [], f"modules on disk the walk did not find: {missing}"
    assert "deploytui.cli.console_cmd" in MODULES  # its UI import is inside a function
    assert not any(m.startswith("deploytui.ui") for m in MODULES)


_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(",".join(loaded))
"""


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_load_textual(module: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True,
                            text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    assert result.stdout.strip() == "", f"importing {module} loads {result.stdout.strip()}"


def _textual_imports(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "textual" or name.startswith("textual."):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return found


def test_no_textual_import_statement_outside_ui() -> None:
    files = [p for p in PACKAGE.rglob("*.py") if UI not in p.parents]
    assert PACKAGE / "config.py" in files
    offenders = [hit for p in files for hit in _textual_imports(p)]
    assert offenders == [], "textual imported outside deploytui/ui/:\n" + "\n".join(offenders)


def test_the_static_check_sees_textual_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom textual.app import App\nimport textual_serve\n"
                     "def f():\n    import textual\n    from .textual import x\n",
                     encoding="utf-8")
    assert _textual_imports(probe, tmp_path) == ["probe.py:2: textual.app", "probe.py:5: textual"]


def test_the_first_frame_loads_no_source_module() -> None:
    """The console's panes, screen and app import no ``deploytui.sources`` module: those load
    in the thread that builds the sources after the first frame (start-up speed)."""
    code = ("import sys, deploytui.ui.app as a\n"
            "for pane in a.PANE_CLASSES: a.load_pane_class(pane)\n"
            "print(sorted(m for m in sys.modules if m.startswith('deploytui.sources.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
