"""Issue 11 through the command line: one writer per run, SIGTERM, damaged files, a full disk and
divergence, each a one-line message naming the thing and the fix (INFODROP_TRACEBACK=1 for the
trace). Real processes where the claim is about processes (the lock, SIGTERM, a real full file
system); the others in-process on tiny data."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from infodrop import cli
from infodrop.io import RecoveredFileWarning
from infodrop.io import atomic as atomic_module
from tests._subprocess import subprocess_env

# The MNIST experiment on the bundled 8 x 8 digits: about 0.1 s per epoch.
DIGITS = ["dataset=digits", "train_subset=400", "test_subset=120", "batch_size=64", "plane_samples=100",
          "noise_samples=2", "bins=[4]", "estimators=[binning]", "progress=false", "plot_formats=[png]"]
DIGITS_RUN = "dataset=digits,train_subset=400,test_subset=120,batch_size=64"


def _infodrop(folder: Path, *words: str, **options) -> subprocess.Popen:
    """``infodrop WORDS...`` as its own process in ``folder``."""
    return subprocess.Popen([sys.executable, "-m", "infodrop.cli", *words], cwd=folder, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def _wait_for_epochs(metrics: Path, count: int, process: subprocess.Popen) -> None:
    """Poll until ``metrics`` has ``count`` epoch lines (the run is in the middle of training)."""
    while True:
        assert process.poll() is None, process.communicate()
        if metrics.is_file():
            lines = [line for line in metrics.read_text().splitlines() if line.endswith("}")]
            if len(lines) >= count:
                return
        time.sleep(0.05)


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("infodrop: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_second_process_on_the_same_run_exits_at_once_naming_the_run_and_the_holder(tmp_path):
    command = ["mnist", "train", "with", *DIGITS, "epochs=400", "checkpoint_every=1"]
    first = _infodrop(tmp_path, *command)
    metrics = tmp_path / "runs" / "mnist" / DIGITS_RUN / "metrics.jsonl"
    try:
        _wait_for_epochs(metrics, 2, first)
        second = subprocess.run([sys.executable, "-m", "infodrop.cli", *command], cwd=tmp_path, env=subprocess_env(),
                                capture_output=True, text=True)
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate()
    assert second.returncode == 2
    line = _error_line(second.stderr)
    assert f"mnist/{DIGITS_RUN} is in use by process {first.pid} on {socket.gethostname()}" in line
    assert "epoch 1/" not in second.stdout  # it trained nothing
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == sorted(set(epochs))  # one writer: no epoch twice, none out of order


def test_sigterm_in_the_middle_of_a_real_run_saves_its_epoch_exits_143_and_the_rerun_resumes_there(tmp_path):
    command = ["mnist", "train", "with", *DIGITS, "epochs=120", "checkpoint_every=1000"]
    run = tmp_path / "runs" / "mnist" / DIGITS_RUN
    first = _infodrop(tmp_path, *command)
    _wait_for_epochs(run / "metrics.jsonl", 3, first)
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate()
    assert first.returncode == 143, stderr
    assert "infodrop: terminated (SIGTERM)" in stderr and "Traceback" not in stderr
    saved = [line for line in stdout.splitlines() if line.startswith("terminated: saved epoch")]
    assert len(saved) == 1, stdout
    epoch = int(saved[0].split()[3])
    assert epoch >= 3
    assert json.loads((run / "result.json").read_text())["status"] == "terminated"

    again = subprocess.run([sys.executable, "-m", "infodrop.cli", *command], cwd=tmp_path, env=subprocess_env(),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"after epoch {epoch}" in again.stdout and f"epoch {epoch + 1}/120:" in again.stdout
    assert f"epoch {epoch}/120:" not in again.stdout
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 121))
    assert json.loads((run / "result.json").read_text())["status"] == "completed"


def test_a_full_disk_is_one_line_naming_the_checkpoint_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def full(_descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_module.os, "fsync", full)
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", "checkpoint_every=1"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "the disk is full" in line and "free space on" in line


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a small file system")
def test_a_really_full_models_folder_is_one_line_and_exit_2(tmp_path):
    # The checkpoints go to a 192 KiB tmpfs in a private mount namespace (root or user namespaces).
    models = tmp_path / "models"
    models.mkdir()
    script = f'mount -t tmpfs -o size=192k tmpfs "{models}" && exec "{sys.executable}" -m infodrop.cli "$@"'
    words = ["mnist", "train", "with", *DIGITS, "epochs=1", f"models_dir={models}"]
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    result = subprocess.run([*prefix, "sh", "-c", script, "sh", *words], cwd=tmp_path, env=subprocess_env(),
                            capture_output=True, text=True)
    if "mount" in result.stderr and "infodrop" not in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 2, result.stderr
    line = _error_line(result.stderr)
    assert f"cannot write {models}/mnist/{DIGITS_RUN}.pt: the disk is full" in line


def test_a_huge_learning_rate_is_training_diverged_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=3", "lr=1e30"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("infodrop: error: training diverged at epoch 1 (") and line.endswith("); lower lr")


def test_infodrop_traceback_shows_the_trace_instead(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFODROP_TRACEBACK", "1")
    from infodrop.engine import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", "lr=1e30"])


# --------------------------------------------------------------------------- a trained CIFAR run


def _cifar_batches(folder: Path) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name, count in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 10)]:
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"labels": [int(v) for v in rng.integers(0, 10, count)]}
        (folder / name).write_bytes(pickle.dumps(batch))


CIFAR = ["filter_percentage=0.05", "batch_size=5", "progress=false"]
CIFAR_RUN = "filter_percentage=0.05,batch_size=5"


@pytest.fixture
def cifar_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _cifar_batches(tmp_path / "cifar-10-batches-py")
    assert cli.main(["cifar", "prepare", "with", "source=cifar-10-batches-py"]) == 0
    assert cli.main(["cifar", "train", "with", "epochs=2", "checkpoint_every=1", *CIFAR]) == 0
    return tmp_path


def test_cifar_test_on_a_damaged_checkpoint_is_refused_in_one_line_never_a_number(cifar_run, capsys):
    # Before: "Test error: 89.33% (loss nan)" and exit 0.
    model = cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.pt"
    data = bytearray(model.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    model.write_bytes(data)
    capsys.readouterr()
    assert cli.main(["cifar", "test", "with", *CIFAR]) == 2
    captured = capsys.readouterr()
    line = _error_line(captured.err)
    assert f"checkpoint {Path('models') / 'cifar' / f'{CIFAR_RUN}.pt'}" in line and "delete it and train again" in line
    assert "Test error" not in captured.out


def test_cifar_train_resumes_from_the_previous_checkpoint_when_the_latest_is_damaged(cifar_run, capsys):
    model = cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.pt"
    assert (cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.prev.pt").is_file()
    model.write_bytes(model.read_bytes()[:-5000])  # cut short
    capsys.readouterr()
    with pytest.warns(RecoveredFileWarning) as caught:
        assert cli.main(["cifar", "train", "with", "epochs=3", "checkpoint_every=1", *CIFAR]) == 0
    (message,) = [str(w.message) for w in caught if w.category is RecoveredFileWarning]
    assert "cannot be read" in message and "using the previous checkpoint" in message and "(epoch 1)" in message
    # The command line shows it as one line.
    assert warnings.formatwarning(message, RecoveredFileWarning, "x.py", 1) == f"infodrop: warning: {message}\n"
    captured = capsys.readouterr()
    assert "after epoch 1" in captured.out and "epoch 2/3:" in captured.out


def test_cifar_test_appends_its_record_on_a_line_boundary_after_a_cut_off_line(cifar_run, capsys):
    # Before: `test` glued its record onto the half line, and nothing could read the file.
    metrics = cifar_run / "runs" / "cifar" / CIFAR_RUN / "metrics.jsonl"
    metrics.write_text(metrics.read_text()[:-30])
    with pytest.warns(RecoveredFileWarning, match=r"metrics.jsonl: dropped its last line 2, which is cut short"):
        assert cli.main(["cifar", "test", "with", *CIFAR]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [record.get("epoch", record.get("command")) for record in records] == [1, "test"]
