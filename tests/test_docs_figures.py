"""Every figure the README and docs/ show is made by scripts/redraw_docs_figures.py from a
committed data file (or is listed there with the command that makes it), and the script makes it."""

from __future__ import annotations

import importlib.util
import re
import sys

from tests._subprocess import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _script():
    spec = importlib.util.spec_from_file_location("redraw_docs_figures", REPO / "scripts" / "redraw_docs_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _referenced_figures() -> dict[str, str]:
    """Image and link targets ending in .png in README.md and docs/**/*.md, relative to docs/,
    with the file that references each."""
    found = {}
    documents = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+\.png)\)", document.read_text()):
            path = (document.parent / target).resolve()
            found[path.relative_to((REPO / "docs").resolve()).as_posix()] = document.relative_to(REPO).as_posix()
    return found


def test_the_readme_and_docs_reference_only_figures_that_exist_and_the_script_makes():
    script = _script()
    made = {figure.target for figure in script.FIGURES}
    references = _referenced_figures()
    assert references, "the README shows figures"
    for target, document in references.items():
        assert (REPO / "docs" / target).is_file(), f"{document} shows docs/{target}, which does not exist"
        assert target in made or script.made_elsewhere(target), (
            f"{document} shows docs/{target}, which scripts/redraw_docs_figures.py neither makes nor lists in MADE_ELSEWHERE")


def test_every_figure_under_docs_has_a_maker_and_every_data_file_is_committed():
    script = _script()
    made = {figure.target for figure in script.FIGURES}
    for png in (REPO / "docs").rglob("*.png"):
        target = png.relative_to(REPO / "docs").as_posix()
        assert target in made or script.made_elsewhere(target), f"docs/{target} has no maker"
    for figure in script.FIGURES:
        assert (REPO / "docs" / figure.data).exists(), f"docs/{figure.target}: its data docs/{figure.data} is missing"


def test_every_figure_the_script_makes_is_shown_by_the_readme_or_docs():
    references = _referenced_figures()
    unshown = [figure.target for figure in _script().FIGURES if figure.target not in references]
    assert not unshown, f"docs/{unshown[0]} is drawn but no README or docs page shows it; show it or drop it"


def test_the_script_draws_every_figure_it_lists(tmp_path):
    script = _script()
    written = script.redraw(script.FIGURES, tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(f.target for f in script.FIGURES)
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC
