"""Every DVC stage depends on all the code it runs, and the library imports downward only.

For each stage of dvc.yaml and comparison/dvc.yaml, the stage module named in its ``cmd``
(``python -m stages.X``) and every module of ``pipeline/`` and ``stages/`` it imports,
transitively, must be listed in the stage's ``deps`` (the file, or a folder containing it);
otherwise editing that module leaves the stage's outputs stale without DVC noticing.
The import graph is read with ``ast``, never by importing, so it needs no heavy dependencies
and picks up new modules by itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.factories import ROOT

PACKAGES = ("pipeline", "stages")
PIPELINES = ("dvc.yaml", "comparison/dvc.yaml")  # comparison's stages have wdir: .., paths are from ROOT


def module_file(name: str) -> Path | None:
    """The file of module ``name`` if it is inside pipeline/ or stages/, else None."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path, name: str) -> Iterator[str]:
    """Absolute names of everything ``path`` (module ``name``) imports, anywhere in its body.

    ``from a import b`` yields ``a`` and ``a.b``: ``b`` may be a submodule; if it is not,
    ``module_file`` finds no file for ``a.b`` and it is dropped.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    # imports under `if TYPE_CHECKING:` never run: they are for the type checker only
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is the current package, 2 its parent...
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_files(module: str) -> set[Path]:
    """Files of ``module`` and every pipeline/stages module it imports transitively,
    with the ``__init__.py`` of every package on the way (importing ``a.b`` runs ``a``)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_names(path, name)
    return set(seen.values())


def stages() -> Iterator[pytest.param]:
    for pipeline in PIPELINES:
        for stage_name, stage in yaml.safe_load((ROOT / pipeline).read_text())["stages"].items():
            yield pytest.param(stage, id=f"{pipeline}:{stage_name}")


def code_deps(stage: dict) -> list[str]:
    """The deps under pipeline/ or stages/ (templated ``${...}`` deps are data: skipped)."""
    deps = [str(dep) for dep in stage.get("deps", []) if "${" not in str(dep)]
    return [dep.rstrip("/") for dep in deps if dep.split("/")[0] in PACKAGES]


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(dep) or Path(dep) in rel.parents for dep in deps)


#: Files a module reads beside its code (package data): a stage that imports the module depends on them too.
DATA = {"pipeline/evaluation/review.py": ["pipeline/evaluation/templates"]}


def data_files(files: set[Path]) -> set[Path]:
    return {ROOT / data for f in files for data in DATA.get(str(f.relative_to(ROOT)), [])}


@pytest.mark.parametrize("stage", stages())
def test_stage_depends_on_all_its_code(stage: dict) -> None:
    match = re.match(r"\s*python\s+-m\s+(stages\.\w+)", stage["cmd"])
    assert match, f"cmd is not `python -m stages.X ...`: {stage['cmd']!r}"
    module = match.group(1)
    assert module_file(module), f"{module} has no file under stages/"
    deps = code_deps(stage)
    files = imported_files(module)
    missing = sorted(str(p.relative_to(ROOT)) for p in files | data_files(files) if not covered(p, deps))
    assert not missing, f"{module} imports modules missing from the stage's deps: {missing}"


@pytest.mark.parametrize("stage", stages())
def test_stage_depends_on_no_code_it_does_not_run(stage: dict) -> None:
    """A code dep the stage never imports re-runs it (and all after it) for nothing when edited."""
    module = re.match(r"\s*python\s+-m\s+(stages\.\w+)", stage["cmd"]).group(1)
    files = imported_files(module)
    used = [p.relative_to(ROOT) for p in files | data_files(files)]
    unused = [dep for dep in code_deps(stage)
              if not any(rel == Path(dep) or Path(dep) in rel.parents for rel in used)]
    assert not unused, f"{module} never imports these deps: {unused}"


@pytest.mark.parametrize("stage", stages())
def test_stage_code_deps_exist(stage: dict) -> None:
    stale = [dep for dep in code_deps(stage) if not (ROOT / dep).exists()]
    assert not stale, f"deps that no longer exist: {stale}"


def test_import_graph_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every import form the stages use, on a throwaway tree."""
    files = {
        "stages/__init__.py": "",
        "stages/run.py": "import os\nfrom pipeline.a import f\nimport pipeline.b\n",
        "pipeline/__init__.py": "",
        "pipeline/a.py": "from typing import TYPE_CHECKING\nfrom . import c\nfrom .sub.d import g\n"
                         "if TYPE_CHECKING:\n    from . import unused\ndef f():\n    from pipeline import e\n",
        "pipeline/b.py": "import numpy\n",
        "pipeline/c.py": "",
        "pipeline/e.py": "",
        "pipeline/sub/__init__.py": "from .h import k\n",
        "pipeline/sub/d.py": "from ..params import z\n",
        "pipeline/sub/h.py": "",
        "pipeline/params.py": "",
        "pipeline/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = {str(p.relative_to(tmp_path)) for p in imported_files("stages.run")}
    assert found == set(files) - {"pipeline/unused.py"}
    assert covered(tmp_path / "pipeline/sub/h.py", ["pipeline/sub"])
    assert not covered(tmp_path / "pipeline/sub/h.py", ["pipeline/su"])


#: The library's layers, lowest first: a module may import its own layer and those below, never one above.
LAYERS = ("core", "data", "features", "scoring", "models", "evaluation")


def layer_of(path: Path) -> int | None:
    parts = path.relative_to(ROOT).parts
    return LAYERS.index(parts[1]) if parts[0] == "pipeline" and len(parts) > 2 and parts[1] in LAYERS else None


def upward_imports(root: Path = ROOT) -> list[str]:
    """``module -> imported module`` for every import (function-level ones too) of a layer above the module's."""
    found = []
    for path in sorted((root / "pipeline").rglob("*.py")):
        own = layer_of(path)
        if own is None:
            continue
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for imported in imported_names(path, name):
            target = module_file(imported)
            if target is not None and (layer_of(target) or -1) > own:
                found.append(f"{name} -> {imported}")
    return sorted(set(found))


def test_the_library_imports_downward_only() -> None:
    assert upward_imports() == []
