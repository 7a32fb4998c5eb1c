"""Atomic writes under a full disk and after kill -9 (issue 11, items 4 and 6)."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from infodrop.io import (
    DiskFullError,
    append_jsonl,
    append_line,
    atomic_path,
    is_temporary,
    load_checkpoint,
    remove_temporaries,
    save_checkpoint,
    save_npz,
    save_torch,
    write_json,
)
from infodrop.io import atomic as atomic_module
from tests._subprocess import subprocess_env

WRITERS = {
    "checkpoint": lambda path: save_checkpoint({"model": {"w": torch.ones(1000)}, "epoch": 2}, path),
    "torch": lambda path: save_torch({"w": torch.ones(1000)}, path),
    "npz": lambda path: save_npz(path, images=np.ones((10, 3))),
    "json": lambda path: write_json(path, {"status": "completed"}),
    "jsonl": lambda path: append_jsonl(path, {"epoch": 2}),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_full_disk_is_one_line_naming_the_file_and_the_previous_file_is_intact(tmp_path, monkeypatch, kind):
    path = tmp_path / f"file.{kind}"
    if kind == "jsonl":
        append_jsonl(path, {"epoch": 1})
    else:
        WRITERS[kind](path)
    before = path.read_bytes()

    def full(_descriptor):  # the kernel reports a full disk when the data is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_module.os, "fsync", full)
    with pytest.raises(DiskFullError) as caught:
        WRITERS[kind](path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "the disk is full" in message
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name != path.name and not p.name.startswith("file.checkpoint")] == []


def test_a_write_cut_short_by_enospc_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"old": True})
    with pytest.raises(DiskFullError, match="metrics.json: the disk is full"):
        with atomic_path(path) as temporary:
            with open(temporary, "w") as handle:
                handle.write("{\"new\": ")
                raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == '{\n  "old": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_torchs_short_write_error_on_a_full_disk_is_reported_as_a_full_disk(tmp_path, monkeypatch):
    # torch.save to a path hides ENOSPC behind "RuntimeError: [enforce fail at inline_container.cc]
    # ... unexpected pos"; then the file system's free blocks decide.
    class Usage:
        f_bavail = 0

    monkeypatch.setattr(atomic_module.os, "statvfs", lambda folder: Usage())
    with pytest.raises(DiskFullError, match="model.pt: the disk is full"):
        with atomic_path(tmp_path / "model.pt"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 140544 vs 140432")


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(OSError) as caught:
        with atomic_path(tmp_path / "x.txt"):
            raise OSError(errno.EACCES, "Permission denied")
    assert not isinstance(caught.value, DiskFullError)
    with pytest.raises(RuntimeError, match="unrelated"):
        with atomic_path(tmp_path / "x.txt"):
            raise RuntimeError("unrelated")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a small file system")
def test_a_checkpoint_on_a_really_full_file_system_fails_in_one_line_and_keeps_the_old_one(tmp_path):
    # A 256 KiB tmpfs in a private mount namespace (user namespaces or root; skipped otherwise).
    script = textwrap.dedent(
        """
        import sys, torch
        from infodrop.io import DiskFullError, load_checkpoint, save_checkpoint
        path = sys.argv[1] + "/model.pt"
        save_checkpoint({"model": {"w": torch.ones(1000)}, "epoch": 1}, path)
        try:
            save_checkpoint({"model": {"w": torch.ones(100000)}, "epoch": 2}, path)
        except DiskFullError as error:
            print("REFUSED", error)
        print("EPOCH", load_checkpoint(path)["epoch"])
        """
    )
    mount = tmp_path / "small"
    mount.mkdir()
    command = f'mount -t tmpfs -o size=256k tmpfs "{mount}" && exec "{sys.executable}" -c "$0" "{mount}"'
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command, script] if os.geteuid() else ["unshare", "-m", "sh", "-c", command, script],
        capture_output=True, text=True, env=subprocess_env(),
    )
    if result.returncode != 0 and "EPOCH" not in result.stdout and "DiskFullError" not in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")  # the script never ran
    assert result.returncode == 0, result.stderr
    assert "REFUSED cannot write" in result.stdout and "model.pt: the disk is full" in result.stdout
    assert "EPOCH 1" in result.stdout


def test_appends_start_on_a_line_boundary(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("first line without its newline")
    append_line(path, "second")
    assert path.read_text() == "first line without its newline\nsecond\n"


KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from infodrop.io import atomic_path
folder = Path(sys.argv[1])
names = ["metrics.jsonl", "plane.json", "result.json", "information_plane.png", "cifar10-train.npz", "model.pt"]
with atomic_path(folder / names[0]) as a, atomic_path(folder / names[1]) as b, atomic_path(folder / names[2]) as c, \\
        atomic_path(folder / names[3]) as d, atomic_path(folder / names[4]) as e, atomic_path(folder / names[5]) as f:
    for temporary in (a, b, c, d, e, f):
        temporary.write_bytes(b"half of a file")
    print("writing", flush=True)
    time.sleep(600)
"""


def test_temporaries_of_every_kind_left_by_kill_9_are_removed_and_nothing_else(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 6 and all(is_temporary(tmp_path / name) for name in left)
    # Files of the user that merely look alike stay.
    for name in (".notes.tmp", "draft.json.abcdefgh.tmp", ".model.pt.ABCDEFGH.tmp", "keep.pt"):
        (tmp_path / name).write_text("mine")
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.pt.ABCDEFGH.tmp", ".notes.tmp", "draft.json.abcdefgh.tmp", "keep.pt"]


def test_in_a_shared_folder_only_the_temporaries_of_the_named_file_are_removed(tmp_path):
    mine, other = tmp_path / ".run_a.pt.abcd1234.tmp", tmp_path / ".run_b.pt.abcd1234.tmp"
    sub = tmp_path / "sub"
    sub.mkdir()
    nested = sub / ".plane.json.zz_99xyz.tmp"
    for path in (mine, other, nested):
        path.write_bytes(b"x")
    assert remove_temporaries(tmp_path, of="run_a.pt") == [mine]
    assert other.exists() and nested.exists()
    assert remove_temporaries(tmp_path, recursive=True) == sorted([other, nested])


def test_a_checkpoint_survives_its_writer_being_killed_mid_save(tmp_path):
    # The previous checkpoint is the one loaded whatever moment the kill hits: here, mid-write.
    save_checkpoint({"model": {"w": torch.zeros(10)}, "epoch": 1}, tmp_path / "model.pt")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "model.pt") as temporary:
            temporary.write_bytes(b"half")
            raise KeyboardInterrupt
    assert load_checkpoint(tmp_path / "model.pt")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
