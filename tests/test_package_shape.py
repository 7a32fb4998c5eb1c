"""The package's shape (issue 18), as scripts/check_shape.py measures it with ast: no class over
250 lines, no module over 600, no function over 80 (docstrings not counted), no import cycle.
The second test checks that the measure sees a breach and a cycle, so the first cannot pass by
measuring nothing."""

from __future__ import annotations

import importlib.util

from tests._subprocess import REPO


def _check_shape():
    spec = importlib.util.spec_from_file_location("check_shape", REPO / "scripts" / "check_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_long_class_module_or_function_and_no_import_cycle():
    assert _check_shape().measure(REPO / "src" / "infodrop", 250, 600, 80) == []


def test_the_measure_finds_a_long_function_and_an_import_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (package / "a.py").write_text(f"from pkg import b\n\n\ndef long():\n{body}\n")
    (package / "b.py").write_text("from pkg import a\n")
    breaches = _check_shape().measure(package, 250, 600, 80)
    assert any(line.startswith("function") and "long" in line for line in breaches), breaches
    assert any(line.startswith("import cycle") for line in breaches), breaches
