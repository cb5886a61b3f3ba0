"""The layering holds: imports flow cli/serve -> app -> api -> store -> bptt, workers use store and
bptt only, the engine is used through `bptt.__all__`, and no two modules have names that differ
by a suffix only. Read from the source (ast), so a violation fails here whatever runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import bptt

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bptt", "service", "workers")
# What each room may not import (a prefix of a dotted module name).
FORBIDDEN = {
    "service/store": ("flask", "werkzeug", "service.api", "service.dashboard", "service.app",
                      "service.cli", "service.serve", "service.supervisor", "service.client",
                      "workers"),
    "workers": ("flask", "werkzeug", "service.api", "service.dashboard", "service.app",
                "service.cli", "service.serve", "service.supervisor", "service.client"),
    "service/api": ("service.app", "service.cli", "service.serve", "service.supervisor",
                    "service.dashboard", "workers"),
    "service/dashboard": ("service.api", "service.store", "service.app", "workers"),
    "bptt": ("service", "workers", "flask", "sqlalchemy", "celery"),
}


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in a file, relative ones made absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_each_room_imports_only_downwards() -> None:
    wrong = []
    for folder, forbidden in FORBIDDEN.items():
        for path in sources(folder):
            for line, module in imported(path):
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_service_and_workers_use_the_engine_through_its_public_names() -> None:
    public = set(bptt.__all__)
    wrong = []
    for path in sources("service") + sources("workers"):
        text = path.read_text()
        for line, module in imported(path):
            parts = module.split(".")
            if parts[0] == "bptt" and len(parts) > 1 and parts[1] not in public:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "bptt" and node.attr not in public):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} uses bptt.{node.attr}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_every_public_name_of_the_engine_has_a_docstring() -> None:
    undocumented = [name for name in bptt.__all__
                    if callable(getattr(bptt, name)) and not getattr(bptt, name).__doc__]
    assert not undocumented


def test_no_two_modules_have_names_that_differ_by_a_suffix_only() -> None:
    """forecasts.py beside forecasting.py, errors.py in two packages: one name, two things."""
    by_stem = defaultdict(list)
    for package in PACKAGES:
        for path in sources(package):
            if path.name != "__init__.py":
                by_stem[_stem(path.stem)].append(str(path.relative_to(ROOT)))
    assert not {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}


def _stem(name: str) -> str:
    """The name without one English ending: forecasts, forecasting -> forecast."""
    for ending in ("ing", "ers", "er", "es", "s", "e"):
        if name.endswith(ending) and len(name) > len(ending) + 2:
            return name[: -len(ending)]
    return name


def test_every_room_says_what_it_holds() -> None:
    for room in ("service/api", "service/store", "service/dashboard"):
        doc = ast.get_docstring(ast.parse((ROOT / room / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) == 1, room


def test_a_worker_process_loads_no_flask(tmp_path: Path) -> None:
    code = ("import sys, workers.celery_app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"BPTT_DATA_DIR": str(tmp_path),
                                                    "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
