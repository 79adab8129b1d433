"""House rules a reader relies on, checked on the code itself."""

import re

from tests.factories import ROOT

CODE = ("pipeline", "stages", "benchmarks", "tests", "comparison", ".ci")
HISTORY = re.compile(r"\b[Ii]ssues? ?#?\d+|\bbefore issue\b")


def test_code_names_no_issue_numbers() -> None:
    """Comments say why, not when: an issue number is history, which git keeps."""
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in CODE for path in sorted((ROOT / folder).rglob("*"))
             if path.is_file() and path.suffix in {".py", ".yaml", ""} and "__pycache__" not in path.parts
             for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if HISTORY.search(line)]
    found += [f"{name}:{n}" for name in ("dvc.yaml", "params.yaml")
              for n, line in enumerate((ROOT / name).read_text().splitlines(), 1) if HISTORY.search(line)]
    assert not found, f"issue numbers in code: {found}"
