"""The layout's rules, checked: the import-linter contracts and no imports hidden inside functions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Product code: what runs in the API and the worker. Tooling (cli, bench, devstack) may import lazily
# to keep `bulkops --help` fast.
PRODUCT = [
    *(ROOT / "bulkops" / p for p in ("domain", "store", "service", "infra")),
    ROOT / "bulkops" / "settings.py",
    ROOT / "bulkops" / "worker.py",
    ROOT / "workflows",
    ROOT / "activities",
    ROOT / "api",
]


def _product_files() -> list[Path]:
    files: list[Path] = []
    for p in PRODUCT:
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency"
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_imports_inside_functions() -> None:
    hidden = []
    for path in _product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden += [
                    f"{path.relative_to(ROOT)}:{inner.lineno}"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                ]
    assert hidden == []
