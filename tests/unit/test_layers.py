"""Layers import downwards only (DESIGN.md): the commands on top (the HMC commands and, beside
them, the REST API that runs them), the HMC core under them, libvirt's adapter below, the
exception root and the code registry at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lpmlab"


def imports(path: Path) -> set[str]:
    """Every lpmlab module ``path`` imports, also inside functions (the lazy imports)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "lpmlab" or m.startswith("lpmlab.")}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# layer (a subpackage or top-level module of lpmlab) -> the layers it must not import
FORBIDDEN = {
    "hmc": {"cli", "rest", "demo", "report", "pytest_plugin", "pytest_heal"},
    "rest": {"demo", "report", "pytest_plugin", "pytest_heal"},
    "demo": {"cli", "rest"},
    "report": {"cli", "rest"},
    "adapter": {"cli", "rest", "hmc", "demo", "report", "fabric", "rmc"},
    "rmc": {"cli", "rest", "hmc", "demo", "report"},
    "codes": {"cli", "rest", "hmc", "demo", "report", "adapter", "fabric", "rmc", "topology"},
    "errors": {"cli", "rest", "hmc", "demo", "report", "adapter", "fabric", "rmc", "topology",
               "codes"},
}
COMMANDS = ("cli", "rest")  # the REST API runs its jobs as commands (lpmlab.cli.cmdwire)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer):
    paths = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() \
        else sorted((PACKAGE / layer).rglob("*.py"))
    assert paths
    upward = {f"{p.relative_to(PACKAGE)} imports {m}" for p in paths for m in imports(p)
              if layer_of(m) in FORBIDDEN[layer]}
    assert upward == set()


def test_only_the_commands_import_the_commands():
    below = [p for p in PACKAGE.rglob("*.py")
             if not set(COMMANDS) & set(p.relative_to(PACKAGE).parts)]
    assert {str(p.relative_to(PACKAGE)) for p in below
            if any(layer_of(m) == "cli" for m in imports(p))} == set()
