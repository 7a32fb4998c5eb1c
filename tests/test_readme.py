"""The README's Python snippet prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re

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
