"""Issue 17 ("Nothing wrong, round 3"): no number printed from bad data, one line for every
refusal, interrupted and orphaned runs that save what they say. In-process through ``cli.main``
on the bundled digits where the claim is about one command; real processes where it is about
signals and parents."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from infodrop import cli
from infodrop.io import DamagedFileError, load_checkpoint, load_npz, save_checkpoint, save_npz
from tests._subprocess import subprocess_env
from tests.experiments._workdirs import folder_after, working_copy

pytestmark = pytest.mark.usefixtures("one_thread")

# The MNIST experiment on the bundled 8 x 8 digits: about 0.1 s per epoch.
DIGITS = ["dataset=digits", "train_subset=400", "test_subset=120", "batch_size=64", "plane_samples=100",
          "noise_samples=2", "bins=[4]", "estimators=[binning]", "progress=false", "plot_formats=[png]"]
DIGITS_RUN = "dataset=digits,train_subset=400,test_subset=120,batch_size=64"


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("infodrop: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A working directory with an MNIST digits run trained for 2 epochs (checkpoint every epoch)."""
    return folder_after(tmp_path_factory, "trained", [["mnist", "train", "with", *DIGITS, "epochs=2", "checkpoint_every=1"]])


@pytest.fixture
def inside(trained, tmp_path, monkeypatch):
    """A copy of the trained working directory as the current directory."""
    return working_copy(trained, tmp_path, monkeypatch)


def _checkpoint(folder: Path) -> Path:
    return folder / "models" / "mnist" / f"{DIGITS_RUN}.pt"


# --------------------------------------------------------------------------- 1. checksums that cannot be stripped


def _strip(path: Path, **changes) -> None:
    """Rewrite a checkpoint as a person would: load it, drop its checksum entry, change entries."""
    state = torch.load(path, weights_only=True)
    state.pop("sha256")
    state.update(changes)
    torch.save(state, path)


@pytest.mark.end_to_end
def test_checkpoints_with_their_checksum_removed_are_refused_by_train_never_resumed(inside, capsys):
    checkpoint = _checkpoint(inside)
    _strip(checkpoint, epoch=99)
    _strip(checkpoint.with_name(f"{DIGITS_RUN}.prev.pt"))
    capsys.readouterr()
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=3"]) == 2
    captured = capsys.readouterr()
    assert "has no checksum, though its format 'infodrop.checkpoint/2' always carries one" in _error_line(captured.err)
    assert "test error" not in captured.out


def test_a_checkpoint_with_its_checksum_removed_is_refused_by_the_loader(tmp_path):
    path = save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1}, tmp_path / "run.pt")
    _strip(path, epoch=99)
    with pytest.raises(DamagedFileError, match=r"run.pt has no checksum.*the file was altered"):
        load_checkpoint(path)


def test_an_earlier_version_checkpoint_loads_with_a_warning_naming_the_resave_and_resave_gives_it_a_checksum(tmp_path):
    from infodrop.io import EarlierVersionWarning

    path = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.ones(3)}, "epoch": 1}, path)  # as infodrop wrote them before checksums
    with pytest.warns(EarlierVersionWarning, match=r"old.pt is of an earlier infodrop version .* python -m infodrop.io.resave "):
        assert load_checkpoint(path)["epoch"] == 1
    done = subprocess.run([sys.executable, "-m", "infodrop.io.resave", str(path)], env=subprocess_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"re-saved {path} with its checksum", done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(path)["epoch"] == 1
    _strip(path)
    with pytest.raises(DamagedFileError, match="no checksum"):
        load_checkpoint(path)


def test_an_npz_with_its_checksum_removed_is_refused_and_an_unmarked_one_warns(tmp_path):
    from infodrop.io import EarlierVersionWarning
    from infodrop.io.resave import resave

    path = save_npz(tmp_path / "data.npz", images=np.zeros((2, 1, 4, 4), np.float32), labels=np.arange(2))
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "__sha256__"}
    np.savez(path.with_name("stripped.npz"), **arrays)
    with pytest.raises(DamagedFileError, match="stripped.npz is altered: it has no checksum"):
        load_npz(path.with_name("stripped.npz"))
    arrays.pop("__format__")
    np.savez(path.with_name("foreign.npz"), **arrays)
    with pytest.warns(EarlierVersionWarning, match="foreign.npz has no checksum .* python -m infodrop.io.resave"):
        assert sorted(load_npz(path.with_name("foreign.npz"))) == ["images", "labels"]
    resave(path.with_name("foreign.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(load_npz(path.with_name("foreign.npz"))) == ["images", "labels"]


# --------------------------------------------------------------------------- 2. prepared data checked on load


def _cifar_npz(folder: Path, *, side: int = 32, top_label: int = 9) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("test", 5)):
        labels = np.minimum(np.arange(count), top_label)
        labels[-1] = top_label
        save_npz(folder / f"cifar10-{split}.npz", images=rng.normal(size=(count, 3, side, side)).astype(np.float32), labels=labels)


@pytest.mark.parametrize(("problem", "message"), [
    ({"side": 16}, "cifar10-train.npz: images are 16 x 16 pixels, not 32 x 32 as this experiment needs; run `infodrop cifar prepare"),
    ({"top_label": 57}, "cifar10-train.npz: labels reach 57, outside the 10 classes 0..9 this experiment has; run `infodrop cifar prepare"),
])
def test_prepared_cifar_data_of_the_wrong_shape_or_labels_is_one_line_never_a_number(tmp_path, monkeypatch, capsys, problem, message):
    monkeypatch.chdir(tmp_path)
    _cifar_npz(tmp_path / "datasets", **problem)
    assert cli.main(["cifar", "train", "with", "epochs=1", "filter_percentage=0.05", "batch_size=5", "progress=false"]) == 2
    captured = capsys.readouterr()
    assert message in _error_line(captured.err)
    assert "error" not in captured.out.lower()


# --------------------------------------------------------------------------- 6. plane files with NaN or inf


def _plane_file(folder: Path) -> Path:
    return folder / "runs" / "mnist" / DIGITS_RUN / "plane.json"


@pytest.mark.end_to_end
@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_a_plane_file_holding_a_non_finite_number_is_refused_by_plot_in_one_line(inside, capsys, number):
    plane = _plane_file(inside)
    text = plane.read_text()
    head, records = text.split('"records"', 1)
    plane.write_text(head + '"records"' + re.sub(r": -?\d+\.\d+(e-?\d+)?,", f": {number},", records, count=1))
    capsys.readouterr()
    assert cli.main(["mnist", "plot", "with", *DIGITS]) == 2
    captured = capsys.readouterr()
    line = _error_line(captured.err)
    assert f"plane.json holds the" in line and number in line and "correct or delete the record" in line
    assert "nan" not in captured.out.lower()


# --------------------------------------------------------------------------- 10. validation gaps at the door


@pytest.mark.parametrize(("entry", "message"), [
    ("jobs_per_device=0", "jobs_per_device must be an integer >= 1, got 0"),
    ("batch_size=1000000000", "batch_size=1000000000 is more images than any training set here holds"),
])
def test_entries_no_run_can_use_are_refused_before_any_data_is_read(tmp_path, monkeypatch, capsys, entry, message):
    monkeypatch.chdir(tmp_path)  # no datasets/ here: a data error would mean the data was looked for first
    assert cli.main(["cifar", "train", "with", "epochs=1", "progress=false", entry]) == 2
    assert message in _error_line(capsys.readouterr().err)


def test_a_batch_larger_than_the_training_subset_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mnist", "train", "with", *DIGITS[:3], "batch_size=500", "epochs=1", "progress=false"]) == 2
    captured = capsys.readouterr()
    assert "batch_size=500 exceeds train_subset=400" in _error_line(captured.err)
    assert "plane cost" not in captured.out  # refused before the run started


# --------------------------------------------------------------------------- 3. an interrupt right after an epoch's line


def _interrupt_after_line(patch, prefix: str) -> None:
    """Make the engine raise KeyboardInterrupt (Ctrl-C) just after printing a line starting with ``prefix``."""
    from infodrop import engine

    write = engine.tqdm.write

    def write_then_interrupt(text, *args, **kwargs):
        write(text, *args, **kwargs)
        if text.startswith(prefix):
            raise KeyboardInterrupt

    patch.setattr(engine.tqdm, "write", write_then_interrupt)


@pytest.mark.end_to_end
def test_ctrl_c_right_after_the_first_epoch_line_saves_that_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _interrupt_after_line(monkeypatch, "epoch 1/")
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=5", "checkpoint_every=1000"]) == 130
    assert "saved epoch 1" in capsys.readouterr().out
    assert load_checkpoint(_checkpoint(tmp_path))["epoch"] == 1


@pytest.mark.end_to_end
def test_sigterm_right_after_an_epoch_line_leaves_a_checkpoint_of_at_least_that_epoch(tmp_path):
    env = dict(subprocess_env(), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "infodrop.cli", "mnist", "train", "with", *DIGITS, "epochs=200",
                                "checkpoint_every=1000"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = 0
    for line in process.stdout:
        if line.startswith("epoch "):
            seen = int(line.split("/")[0].split()[1])
            if seen == 3:
                process.send_signal(signal.SIGTERM)
                break
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "saved its last completed epoch" in err
    assert load_checkpoint(_checkpoint(tmp_path))["epoch"] >= seen == 3


# --------------------------------------------------------------------------- 12. a status from the start


@pytest.mark.end_to_end
def test_a_run_killed_with_sigkill_leaves_result_json_saying_running_with_its_process_and_host(tmp_path):
    import socket

    process = subprocess.Popen([sys.executable, "-m", "infodrop.cli", "mnist", "train", "with", *DIGITS, "epochs=400"],
                               cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "runs" / "mnist" / DIGITS_RUN / "metrics.jsonl"
    try:
        while not metrics.is_file():
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
    finally:
        process.kill()
        process.communicate()
    result = json.loads((tmp_path / "runs" / "mnist" / DIGITS_RUN / "result.json").read_text())
    assert result["status"] == "running"
    assert result["pid"] == process.pid and result["host"] == socket.gethostname() and result["start_time"]


# --------------------------------------------------------------------------- 13. a cut-off plane file


@pytest.mark.end_to_end
def test_a_cut_off_plane_file_is_one_line_that_says_how_to_recover_and_the_advice_works(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    command = ["mnist", "train", "with", *DIGITS, "epochs=4", "checkpoint_every=1"]
    with monkeypatch.context() as patch:
        _interrupt_after_line(patch, "epoch 2/")
        assert cli.main(command) == 130
    plane = _plane_file(tmp_path)
    text = plane.read_text()
    plane.write_text(text[: len(text) * 2 // 3])
    capsys.readouterr()
    assert cli.main(command) == 2
    line = _error_line(capsys.readouterr().err)
    assert "plane.json is cut short (" in line and "delete the damaged last record and close the brackets" in line
    assert "or move the file aside and run the same command" in line
    plane.rename(plane.with_name("plane.json.cut"))
    assert cli.main(command) == 0
    epochs = [record["epoch"] for record in json.loads(plane.read_text())["records"]]
    assert epochs and min(epochs) > 2 and epochs[-1] == 4  # recorded again after the checkpoint's epoch 2


# --------------------------------------------------------------------------- 11. test falls back to .prev.pt as train does


@pytest.mark.end_to_end
def test_cifar_test_uses_the_previous_checkpoint_when_the_latest_is_damaged_as_train_does(tmp_path, monkeypatch, capsys):
    from infodrop.io import RecoveredFileWarning

    monkeypatch.chdir(tmp_path)
    _cifar_npz(tmp_path / "datasets")
    cifar = ["filter_percentage=0.05", "batch_size=5", "progress=false"]
    assert cli.main(["cifar", "train", "with", "epochs=2", "checkpoint_every=1", *cifar]) == 0
    model = tmp_path / "models" / "cifar" / "filter_percentage=0.05,batch_size=5.pt"
    model.write_bytes(model.read_bytes()[:-5000])  # cut short
    capsys.readouterr()
    with pytest.warns(RecoveredFileWarning, match=r"using the previous checkpoint .*prev.pt \(epoch 1\) instead"):
        assert cli.main(["cifar", "test", "with", *cifar]) == 0
    assert "Test error:" in capsys.readouterr().out


# --------------------------------------------------------------------------- 5. output folders that cannot be written


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: a chmod 555 one, or (as root, who ignores modes) /proc/sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not os.access("/proc/sys", os.W_OK):
        return Path("/proc/sys")
    pytest.skip("no folder here that this process cannot write")


@pytest.mark.parametrize("entry", ["models_dir", "runs_dir"])
@pytest.mark.parametrize("kind", ["a file", "read-only"])
def test_an_output_folder_that_is_a_file_or_read_only_is_one_line_and_exit_2_before_any_work(tmp_path, monkeypatch, capsys, entry, kind):
    monkeypatch.chdir(tmp_path)
    if kind == "a file":
        (tmp_path / "taken").write_text("")
        value, expected = tmp_path / "taken", "is a file, not a folder; give a folder path"
    else:
        value, expected = _read_only_folder(tmp_path) / "out", "cannot be written"
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", f"{entry}={value}"]) == 2
    captured = capsys.readouterr()
    assert f"{entry}={value}" in (line := _error_line(captured.err)) and expected in line
    assert "plane cost" not in captured.out and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- 9. non-ASCII paths


@pytest.mark.end_to_end
def test_a_non_ascii_path_says_how_to_quote_it_and_the_quoted_form_trains_there(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "модели"
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", f"models_dir={folder}"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"models_dir={folder}: the override grammar takes non-ASCII characters (here 'м') only inside quotes" in line
    assert f"write models_dir='{folder}'" in line
    assert cli.main(["mnist", "train", "with", *DIGITS, "epochs=1", f"models_dir='{folder}'"]) == 0
    assert (folder / "mnist" / f"{DIGITS_RUN}.pt").is_file()


# --------------------------------------------------------------------------- 4. sweep workers die with their parent


def _children(pid: int) -> list[int]:
    """The worker processes of a sweep's process (Linux /proc), not its multiprocessing helpers."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command and b"forkserver" not in command:
                found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.end_to_end
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_sweep_workers_save_their_epoch_and_end_when_the_sweep_process_is_killed(tmp_path):
    runs = [f"beta={beta},{DIGITS_RUN}" for beta in ("0.5", "1.0")]
    parent = subprocess.Popen([sys.executable, "-m", "infodrop.cli", "mnist", "train", "--multirun", "with", *DIGITS,
                               "beta=0.5,1", "jobs_per_device=2", "epochs=5000", "checkpoint_every=10000"],
                              cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        metrics = [tmp_path / "runs" / "mnist" / run / "metrics.jsonl" for run in runs]
        deadline = time.monotonic() + 120
        while not all(path.is_file() and len(path.read_text().splitlines()) >= 2 for path in metrics):
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        workers = _children(parent.pid)
        assert len(workers) == 2
        parent.kill()  # kill -9: no chance to pass anything on
        parent.wait()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "the workers went on training without their parent"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    for run in runs:
        folder = tmp_path / "runs" / "mnist" / run
        logged = [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert json.loads((folder / "result.json").read_text())["status"] == "terminated", run
        # Saved as under SIGTERM (checkpoint_every=10000 writes nothing else): the last logged epoch,
        # or the one before when the signal came between its line and its snapshot (a resume
        # drops that line and trains the epoch again).
        saved = load_checkpoint(tmp_path / "models" / "mnist" / f"{run}.pt")["epoch"]
        assert saved >= 2 and saved in (logged[-1], logged[-1] - 1), (run, saved, logged[-3:])
