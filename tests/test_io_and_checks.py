"""The shared door checks and atomic writes every module relies on."""

import os
import stat

import pytest
import torch

from infodrop.checks import resolve_device
from infodrop.io import save_npz, write_json, write_text


def test_atomic_write_leaves_no_temporary_file_and_replaces_the_old_content(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    # mkstemp makes 0600 files; a results file must be readable by the group like any other file.
    previous = os.umask(0o022)
    try:
        written = write_text(tmp_path / "a.txt", "x")
        arrays = save_npz(tmp_path / "b.npz", x=torch.zeros(2).numpy())
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    for path in (written, arrays):
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.txt"
    write_text(target, "old")

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        write_json(target, {"bad": Unserialisable()})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_device_none_is_cuda_when_available_else_cpu():
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot be shown")
def test_asking_for_cuda_without_cuda_is_refused_by_name():
    with pytest.raises(ValueError, match="device='cuda'.*CUDA is not available"):
        resolve_device("cuda")


def test_a_word_that_is_not_a_device_is_refused_by_name():
    with pytest.raises(ValueError, match="device='gpu0' is not a device"):
        resolve_device("gpu0")
