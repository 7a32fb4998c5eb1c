"""Working directories with trained runs, made once per module and copied for each test that
damages its copy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from infodrop import cli


def folder_after(factory, name: str, commands: Sequence[Sequence[str]], prepare=None) -> Path:
    """A new folder from ``factory`` (pytest's tmp_path_factory) in which ``prepare(folder)`` ran
    and then each CLI command (each must exit 0); the current directory is restored after."""
    folder = factory.mktemp(name)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        if prepare is not None:
            prepare(folder)
        for command in commands:
            assert cli.main(list(command)) == 0, command
    finally:
        os.chdir(previous)
    return folder


def working_copy(source: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of ``source`` as the current directory for one test (restored after it)."""
    copy = tmp_path / "work"
    shutil.copytree(source, copy)
    monkeypatch.chdir(copy)
    return copy
