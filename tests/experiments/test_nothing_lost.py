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
from tests.experiments._workdirs import folder_after, working_copy

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


@pytest.mark.end_to_end
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
    assert f"run mnist/{DIGITS_RUN} is in use by process {first.pid} on {socket.gethostname()}" in line
    assert "epoch 1/" not in second.stdout  # it trained nothing
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == sorted(set(epochs))  # one writer: no epoch twice, none out of order


@pytest.mark.end_to_end
def test_sigterm_in_the_middle_of_a_real_run_saves_its_epoch_exits_143_and_the_rerun_resumes_there(tmp_path):
    # 30 epochs: SIGTERM lands after the third of them, long before the last; the rerun trains
    # the rest.
    command = ["mnist", "train", "with", *DIGITS, "epochs=30", "checkpoint_every=1000"]
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
    # The third line was logged; a signal landing between an epoch's log line and its in-memory
    # snapshot saves the epoch before, whose successor the rerun then trains (and logs) again.
    assert epoch >= 2
    assert json.loads((run / "result.json").read_text())["status"] == "terminated"

    again = subprocess.run([sys.executable, "-m", "infodrop.cli", *command], cwd=tmp_path, env=subprocess_env(),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"after epoch {epoch}" in again.stdout and f"epoch {epoch + 1}/30:" in again.stdout
    assert f"epoch {epoch}/30:" not in again.stdout
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 31))
    assert json.loads((run / "result.json").read_text())["status"] == "completed"


@pytest.mark.end_to_end
def test_a_full_disk_is_one_line_naming_the_checkpoint_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def full(_descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_module.os, "fsync", full)
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", "checkpoint_every=1"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "the disk is full" in line and "free space on" in line


@pytest.mark.end_to_end
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
    if result.returncode != 0 and "infodrop" not in result.stderr + result.stdout and "Traceback" not in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")  # infodrop never ran
    assert result.returncode == 2, result.stderr
    line = _error_line(result.stderr)
    assert f"cannot write {models}/mnist/{DIGITS_RUN}.pt: the disk is full" in line


@pytest.mark.end_to_end
def test_a_huge_learning_rate_is_training_diverged_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=3", "lr=1e30"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("infodrop: error: training diverged at epoch 1 (") and line.endswith("); lower lr")


@pytest.mark.end_to_end
def test_infodrop_traceback_shows_the_trace_instead(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFODROP_TRACEBACK", "1")
    from infodrop.epoch_metrics import TrainingDiverged

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


@pytest.fixture(scope="module")
def _cifar_trained(tmp_path_factory):
    """A working directory with prepared tiny CIFAR data and a run trained for 2 epochs
    (checkpoint every epoch), made once for the module."""
    return folder_after(tmp_path_factory, "cifar_run",
                        [["cifar", "prepare", "with", "source=cifar-10-batches-py"],
                         ["cifar", "train", "with", "epochs=2", "checkpoint_every=1", *CIFAR]],
                        prepare=lambda folder: _cifar_batches(folder / "cifar-10-batches-py"))


@pytest.fixture
def cifar_run(_cifar_trained, tmp_path, monkeypatch):
    """A copy of the trained CIFAR working directory as the current directory (tests damage it)."""
    return working_copy(_cifar_trained, tmp_path, monkeypatch)


@pytest.mark.end_to_end
def test_cifar_test_on_a_damaged_checkpoint_is_refused_in_one_line_never_a_number(cifar_run, capsys):
    # Before: "Test error: 89.33% (loss nan)" and exit 0.
    model = cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.pt"
    # No previous checkpoint to fall back to (test uses it as train does: issue 17, item 11).
    (cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.prev.pt").unlink()
    data = bytearray(model.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    model.write_bytes(data)
    capsys.readouterr()
    assert cli.main(["cifar", "test", "with", *CIFAR]) == 2
    captured = capsys.readouterr()
    line = _error_line(captured.err)
    assert f"checkpoint {Path('models') / 'cifar' / f'{CIFAR_RUN}.pt'}" in line and "delete it and train again" in line
    assert "Test error" not in captured.out


@pytest.mark.end_to_end
def test_cifar_train_resumes_from_the_previous_checkpoint_when_the_latest_is_damaged(cifar_run, capsys):
    model = cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.pt"
    assert (cifar_run / "models" / "cifar" / f"{CIFAR_RUN}.prev.pt").is_file()
    model.write_bytes(model.read_bytes()[:-5000])  # cut short
    capsys.readouterr()
    with pytest.warns(RecoveredFileWarning) as caught:
        assert cli.main(["cifar", "train", "with", "epochs=3", "checkpoint_every=1", *CIFAR]) == 0
    (message,) = [str(w.message) for w in caught if w.category is RecoveredFileWarning]
    assert "cannot be read" in message and "using the previous checkpoint" in message and "(epoch 1)" in message
    # The command line shows it as one line (and leaves Python's format alone afterwards).
    with cli._one_line_warnings():
        assert warnings.formatwarning(message, RecoveredFileWarning, "x.py", 1) == f"infodrop: warning: {message}\n"
    assert warnings.formatwarning(message, RecoveredFileWarning, "x.py", 1) != f"infodrop: warning: {message}\n"
    captured = capsys.readouterr()
    assert "after epoch 1" in captured.out and "epoch 2/3:" in captured.out


@pytest.mark.end_to_end
def test_cifar_test_appends_its_record_on_a_line_boundary_after_a_cut_off_line(cifar_run, capsys):
    # Before: `test` glued its record onto the half line, and nothing could read the file.
    metrics = cifar_run / "runs" / "cifar" / CIFAR_RUN / "metrics.jsonl"
    metrics.write_text(metrics.read_text()[:-30])
    with pytest.warns(RecoveredFileWarning, match=r"metrics.jsonl: dropped its last line 2, which is cut short"):
        assert cli.main(["cifar", "test", "with", *CIFAR]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [record.get("epoch", record.get("command")) for record in records] == [1, "test"]


# --------------------------------------------------------------------------- the experiments


def _plane_epochs(run: Path) -> list[int]:
    return [record["epoch"] for record in json.loads((run / "plane.json").read_text())["records"]]


PLANE = [*DIGITS, "epochs=8", "plane_every=3", "estimators=[auto,binning]"]


@pytest.mark.end_to_end
def test_a_run_interrupted_and_resumed_records_the_plane_at_the_epochs_of_an_uninterrupted_one(tmp_path, monkeypatch):
    # plane_every=3 over 8 epochs: 0 (initialisation), 1 (first epoch), 3, 6 and 8 (last).
    # Before, the resumed run also recorded the first epoch it saw: 0, 1, 3, 4, 6, 8.
    import infodrop.engine as engine

    straight = tmp_path / "straight"
    straight.mkdir()
    monkeypatch.chdir(straight)
    assert cli.main(["mnist", "train", "with", *PLANE]) == 0
    expected = json.loads((straight / "runs" / "mnist" / DIGITS_RUN / "plane.json").read_text())["records"]
    assert [record["epoch"] for record in expected] == [0, 1, 3, 6, 8]

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    monkeypatch.chdir(interrupted)
    real_epoch = engine._train_one_epoch

    def ctrl_c_in_epoch_5(state, data, training, place, epoch, **options):
        if epoch == 5:
            raise KeyboardInterrupt
        return real_epoch(state, data, training, place, epoch, **options)

    monkeypatch.setattr(engine, "_train_one_epoch", ctrl_c_in_epoch_5)
    assert cli.main(["mnist", "train", "with", *PLANE]) == 130
    run = interrupted / "runs" / "mnist" / DIGITS_RUN
    assert _plane_epochs(run) == [0, 1, 3]
    monkeypatch.setattr(engine, "_train_one_epoch", real_epoch)
    assert cli.main(["mnist", "train", "with", *PLANE]) == 0
    assert json.loads((run / "plane.json").read_text())["records"] == expected  # the same epochs, the same numbers


@pytest.mark.end_to_end
def test_a_run_killed_with_sigkill_and_resumed_records_the_plane_at_the_same_epochs(tmp_path):
    # A real process killed at a random point after epoch 4 (its last checkpoint: epoch 4 or 6).
    command = ["mnist", "train", "with", *PLANE, "train_subset=1400", "checkpoint_every=2"]
    run_name = DIGITS_RUN.replace("train_subset=400", "train_subset=1400")
    run = tmp_path / "runs" / "mnist" / run_name
    first = _infodrop(tmp_path, *command)
    _wait_for_epochs(run / "metrics.jsonl", 4, first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL
    again = subprocess.run([sys.executable, "-m", "infodrop.cli", *command], cwd=tmp_path, env=subprocess_env(),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout
    assert _plane_epochs(run) == [0, 1, 3, 6, 8]
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == list(range(1, 9))


@pytest.fixture(scope="module")
def _gaussian_trained(tmp_path_factory):
    """A working directory with a Gaussian-dropout mnist run on the digits (1 epoch), made once
    for the module."""
    return folder_after(tmp_path_factory, "gaussian_run", [["mnist", "train", "with", *DIGITS, "epochs=1"]])


@pytest.fixture
def gaussian_run(_gaussian_trained, tmp_path, monkeypatch):
    """A copy of that working directory as the current directory, and its checkpoint."""
    copy = working_copy(_gaussian_trained, tmp_path, monkeypatch)
    # Under a plain name: the run name's '=' and ',' would need quoting in a Hydra override.
    checkpoint = copy / "gaussian.pt"
    shutil.copy(copy / "models" / "mnist" / f"{DIGITS_RUN}.pt", checkpoint)
    return checkpoint


BINARY = [*DIGITS, "binary_epochs=1", "binary_samples=50", "binary_draws=2", "binary_bins=[2,4]"]


@pytest.mark.end_to_end
@pytest.mark.parametrize(
    "problem, message",
    [
        ("missing", r"binary_checkpoint=.*missing.pt: file not found; give a checkpoint written by `infodrop mnist train`"),
        ("payload", r"binary_checkpoint=.*payload.pt: checkpoint .*payload.pt cannot be read \(UnpicklingError"),
        ("not a checkpoint", r"binary_checkpoint=.*tensor.pt: checkpoint .*tensor.pt holds a Tensor, not a checkpoint dict"),
        ("gaussian", r"binary_checkpoint=.*\.pt: .* holds a gaussian-dropout network, not a binary-dropout one; "
                     r"give the checkpoint of a run trained with dropout=binary"),
    ],
)
def test_mnist_binary_refuses_a_checkpoint_it_cannot_use_in_one_line(gaussian_run, capsys, problem, message):
    # Before: tracebacks for the missing file and the payload, and "loaded the binary-dropout
    # network" for the Gaussian-dropout checkpoint.
    import re

    import torch

    folder = gaussian_run.parent
    if problem == "payload":
        class Payload:
            def __reduce__(self):
                return (os.system, ("touch pwned",))

        torch.save({"model": Payload()}, folder / "payload.pt")
    files = {"missing": folder / "missing.pt", "payload": folder / "payload.pt", "not a checkpoint": folder / "tensor.pt",
             "gaussian": gaussian_run}
    if problem == "not a checkpoint":
        torch.save(torch.zeros(3), files[problem])
    capsys.readouterr()
    assert cli.main(["mnist", "binary", "with", *BINARY, f"binary_checkpoint={files[problem]}"]) == 2
    captured = capsys.readouterr()
    line = _error_line(captured.err)
    assert re.search(message, line), line
    assert "loaded the binary-dropout network" not in captured.out and not Path("pwned").exists()


@pytest.mark.end_to_end
def test_mnist_binary_uses_a_checkpoint_of_the_right_kind(gaussian_run, capsys):
    assert cli.main(["mnist", "binary", "with", *BINARY, f"gaussian_checkpoint={gaussian_run}"]) == 0
    assert f"binary: loaded the gaussian-dropout network from {gaussian_run}" in capsys.readouterr().out


@pytest.mark.parametrize("seed", ["18446744073709551616", "4294967296", "-1"])
def test_a_seed_out_of_range_is_refused_naming_seed(tmp_path, monkeypatch, capsys, seed):
    # Before: "Overflow when unpacking long long", naming nothing.
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", f"seed={seed}"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "seed must be an integer in [0, 2**32 - 1]" in line and seed in line
    assert not (tmp_path / "runs").exists()  # refused before any work


@pytest.mark.end_to_end
def test_a_plane_json_of_the_wrong_structure_is_one_line_naming_the_file(gaussian_run, capsys):
    # Before: a TypeError traceback.
    plane = gaussian_run.parent / "runs" / "mnist" / DIGITS_RUN / "plane.json"
    document = json.loads(plane.read_text())
    document["records"][0]["train"] = [1, 2, 3]
    plane.write_text(json.dumps(document))
    capsys.readouterr()
    assert cli.main(["mnist", "plot", "with", *DIGITS]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"runs/mnist/{DIGITS_RUN}/plane.json" in line
