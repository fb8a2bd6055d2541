"""docs/design.md is the design the code cites: every `docs/design.md §N` names one of its
sections, and nothing cites a design document outside the repository."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).parents[1]


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / n for n in names if n.endswith((".py", ".md", ".sh", ".cpp", ".hpp", ".toml", "Makefile"))]


def test_design_citations_name_its_sections():
    design = (REPO / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", design, re.M))
    items = {(s, i) for s, body in re.findall(r"^## (\d+)\.(.*?)(?=^## |\Z)", design, re.M | re.S)
             for i in re.findall(r"^(\d+)\. ", body, re.M)}
    cited = [(path, m) for path in _tracked_text_files() for m in re.findall(r"docs/design\.md §(\d+)(?:\.(\d+))?",
                                                                           path.read_text(errors="replace"))]
    assert len(cited) > 30
    for path, (section, item) in cited:
        assert section in sections, f"{path}: cites §{section}, which docs/design.md lacks"
        assert not item or (section, item) in items, f"{path}: cites §{section}.{item}, which docs/design.md lacks"


def test_no_document_outside_the_repository_is_cited():
    for path in _tracked_text_files():
        assert not re.search(r"\bDESIGN(\.md| §)", path.read_text(errors="replace")), path
