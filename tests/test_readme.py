"""The README's Python snippet prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests._subprocess import REPO


def _snippet_and_output() -> tuple[str, str]:
    """The first ```python block of "Using it on your own network" and the ``` block right after it."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Using it on your own network"):]
    found = re.search(r"```python\n(.*?)```\s*\n+[^`]*?```(?:text)?\n(.*?)```", section, re.S)
    assert found, "the README's snippet should be followed by a block with its output"
    return found.group(1), found.group(2)


def test_the_readme_snippet_prints_its_stated_output():
    code, expected = _snippet_and_output()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert printed.getvalue() == expected


def _own_network_script() -> str:
    """The ```python block of "The information plane of your own network"."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### The information plane of your own network"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the section should hold a complete script"
    return found.group(1)


@pytest.mark.end_to_end
def test_the_readme_own_network_script_trains_records_and_draws_its_plane(tmp_path, monkeypatch):
    from infodrop.plane.record import PlaneDocument

    code = _own_network_script()
    for name in ("from infodrop.plane import InformationPlane", "plot_information_plane(", "DataLoader(", ".backward()"):
        assert name in code
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    output = printed.getvalue()
    assert output.count("plane cost:") == 1 and output.count("I(X;Z) = ") == 5
    document = PlaneDocument.load(tmp_path / "plane.json")
    assert [record.epoch for record in document.records] == [0, 1, 2, 3, 4, 5]
    assert document.dataset == "three blobs" and document.sample_counts == {"train": 500, "test": 500}
    for stem in ("plane_auto", "plane_binning", "plane_side_by_side"):
        assert (tmp_path / "plots" / f"{stem}.png").is_file() and f"plots/{stem}.png" in output
