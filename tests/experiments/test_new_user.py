"""What a new user meets when following the README (issue 10, "Rough edges a new user hit"): help
after a command, ``progress`` everywhere, progress bars in logs, a second demo in the same folder,
re-running a finished run, the checkpoint rules, type errors in our words. On the bundled 8x8
digits: seconds each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infodrop import cli
from infodrop.experiments import available_experiments
from tests._subprocess import subprocess_env

# The mixture plane alone (estimators=[auto]): one figure per run instead of four; what these
# tests are about (help, bars, summaries, re-runs, refusals) does not depend on binning.
TINY = ["dataset=digits", "train_subset=300", "test_subset=100", "batch_size=64", "plane_samples=80",
        "noise_samples=2", "bins=[4]", "estimators=[auto]", "plot_formats=[png]", "progress=false"]
DEMO = ["dataset=digits", "train_subset=300", "test_subset=100", "epochs=1", "plane_samples=80", "noise_samples=2",
        "estimators=[auto]", "progress=false", "plot_formats=[png]"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _refused(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr; return that line."""
    status, out, err = _run(capsys, argv)
    assert status == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _summary(out: str) -> str:
    """The run summary: from its ``test error`` line to the end of the output."""
    start = out.rfind("\ntest error")
    assert start >= 0, out
    return out[start + 1:]


# ----------------------------------------------------------------------------------- --help


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("experiment, command", [("mnist", "train"), ("toy", "convergence"), ("cifar", "test")])
def test_help_after_a_command_prints_its_entries_and_exits_0(capsys, tmp_path, experiment, command, flag):
    status, out, err = _run(capsys, [experiment, command, flag])
    assert status == 0, err
    assert out.splitlines()[0].startswith(f"usage: infodrop {experiment} {command}")
    assert cli.main([experiment, "print_config"]) == 0
    assert capsys.readouterr().out in out  # the entries as print_config lists them
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_help_after_settings_shows_them_applied(capsys):
    status, out, err = _run(capsys, ["mnist", "train", "with", "lenet", "epochs=3", "--help"])
    assert status == 0, err
    assert "* epochs = 3 " in out and "* model = 'lenet' " in out
    assert "Run name: model=lenet" in out


# -------------------------------------------------------------------------------- progress


@pytest.mark.parametrize("experiment", available_experiments())
def test_every_experiment_accepts_progress(capsys, experiment):
    status, out, err = _run(capsys, [experiment, "print_config", "with", "progress=false"])
    assert status == 0, err
    assert "progress = false" in out


def _pipe(*argv: str) -> subprocess.CompletedProcess:
    """The CLI in a child process, stdout and stderr to pipes (as in a batch job's log), decoded
    without newline translation, which would turn the bars' carriage returns into newlines."""
    done = subprocess.run([sys.executable, "-m", "infodrop.cli", *argv], capture_output=True, env=subprocess_env(),
                          check=False)
    done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
    return done


TINY_WITH_BARS_UNSET = [word for word in TINY if not word.startswith("progress=")] + ["epochs=1"]


@pytest.mark.end_to_end
def test_progress_bars_are_off_when_stderr_is_not_a_terminal():
    done = _pipe("mnist", "train", "with", *TINY_WITH_BARS_UNSET)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr, done.stderr[:300]  # no carriage-return updates in the log
    assert "epoch 1/1: " in done.stdout  # the epoch lines stay
    toy = _pipe("toy", "convergence", "with", "dims=[1]", "sample_sizes=[20]", "seeds=[0]", "plots_dir=toy")
    assert toy.returncode == 0, toy.stderr
    assert "\r" not in toy.stderr, toy.stderr[:300]


@pytest.mark.end_to_end
def test_progress_true_draws_the_bars_even_into_a_pipe():
    # What the test above looks for is there when the bars are asked for.
    done = _pipe("mnist", "train", "with", *TINY_WITH_BARS_UNSET, "progress=true")
    assert done.returncode == 0, done.stderr
    assert "\r" in done.stderr
    toy = _pipe("toy", "convergence", "with", "dims=[1]", "sample_sizes=[20]", "seeds=[0]", "plots_dir=toy", "progress=true")
    assert toy.returncode == 0, toy.stderr
    assert "\r" in toy.stderr


@pytest.mark.end_to_end
def test_toy_runs_with_progress_false(capsys, tmp_path):
    status, out, err = _run(capsys, ["toy", "convergence", "with", "dims=[1]", "sample_sizes=[20]", "seeds=[0]",
                                     "plots_dir=toy", "progress=false"])
    assert status == 0, err
    assert (tmp_path / "toy" / "convergence_var0.1.csv").is_file()
    assert "\r" not in err


# ---------------------------------------------------------------------------- demo twice


@pytest.mark.end_to_end
def test_a_second_demo_in_the_same_folder_says_first_that_it_retrains_and_overwrites(capsys, tmp_path):
    status, first, err = _run(capsys, ["demo", "with", *DEMO])
    assert status == 0, err
    assert "earlier demo" not in first
    status, second, err = _run(capsys, ["demo", "with", *DEMO])
    assert status == 0, err
    notice = second.splitlines()[0]
    assert "earlier demo" in notice and "trains again from scratch" in notice and "overwrites" in notice, notice
    # What the line says is what happens: one run's records, not two.
    metrics = (tmp_path / "runs" / "mnist" / "demo" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1]
    plane = json.loads((tmp_path / "runs" / "mnist" / "demo" / "plane.json").read_text())
    assert [record["epoch"] for record in plane["records"]] == [0, 1]
    assert "epoch 1/1: " in second


# ------------------------------------------------------------------ summaries and re-runs


@pytest.mark.end_to_end
def test_mnist_train_ends_with_test_error_plane_summary_and_figures(capsys, tmp_path):
    status, out, err = _run(capsys, ["mnist", "train", "with", *TINY, "epochs=2"])
    assert status == 0, err
    summary = _summary(out)
    assert summary.startswith("test error ") and " after epoch 2 of 2" in summary.splitlines()[0]
    assert "train I(X;Z)" in summary and "test I(Z;Y)" in summary and "log N" in summary
    figures = [line.strip() for line in summary.splitlines() if line.startswith("  ") and line.strip().endswith(".png")]
    assert figures and all((tmp_path / path).is_file() for path in figures)
    assert "plane JSON: runs/mnist/" in summary


@pytest.mark.end_to_end
def test_the_demo_ends_with_the_summary_of_mnist_train(capsys):
    status, out, err = _run(capsys, ["demo", "with", *DEMO])
    assert status == 0, err
    summary = _summary(out)
    assert " after epoch 1 of 1" in summary.splitlines()[0]
    for part in ("information plane at layer", "train I(X;Z)", "plane JSON: runs/mnist/demo/plane.json", "figures:"):
        assert part in summary, summary
    assert json.loads(open("runs/mnist/demo/plane.json").read())["variance"] == 4.0  # the demo's default


@pytest.mark.end_to_end
def test_rerunning_a_finished_mnist_train_prints_its_summary_again(capsys):
    status, first, err = _run(capsys, ["mnist", "train", "with", *TINY, "epochs=2"])
    assert status == 0, err
    status, second, err = _run(capsys, ["mnist", "train", "with", *TINY, "epochs=2"])
    assert status == 0, err
    assert "epoch 1/2:" not in second and "epoch 2/2:" not in second  # nothing trained again
    assert "holds all 2 epochs" in second
    assert _summary(second) == _summary(first)


# ----------------------------------------------------------------------- checkpoint rules


@pytest.mark.end_to_end
def test_a_longer_cosine_run_is_refused_naming_the_entries_to_change(capsys):
    assert cli.main(["mnist", "train", "with", *TINY, "epochs=1"]) == 0
    capsys.readouterr()
    message = _refused(capsys, ["mnist", "train", "with", *TINY, "epochs=2"])
    # The cosine schedule spans all epochs: epoch 1 of a 2-epoch run is not epoch 1 of a 1-epoch run.
    assert "cosine" in message
    assert "epochs=1" in message  # to continue or re-plot the checkpoint's run
    assert "models_dir=" in message  # to train the longer run beside it


@pytest.mark.end_to_end
def test_a_shorter_run_than_the_checkpoint_is_refused_naming_the_entries_to_change(capsys):
    assert cli.main(["mnist", "train", "with", *TINY, "epochs=2"]) == 0
    capsys.readouterr()
    message = _refused(capsys, ["mnist", "train", "with", *TINY, "epochs=1"])
    assert "epochs=2" in message and "models_dir=" in message


# --------------------------------------------------------------------- type errors in our words


@pytest.mark.parametrize(
    "setting, message",
    [
        ("epochs=abc", "epochs must be an integer, got 'abc'"),
        ("epochs=1.5", "epochs must be an integer, got 1.5"),
        ("epochs=true", "epochs must be an integer, got true"),
        ("epochs=null", "epochs must be an integer, got null"),
        ("epochs=[1]", "epochs must be an integer, got [1]"),
        ("lr=abc", "lr must be a number, got 'abc'"),
        ("progress=abc", "progress must be true, false or null, got 'abc'"),
        ("plane_bounds=abc", "plane_bounds must be true or false, got 'abc'"),
        ("model=[1]", "model must be a string, got [1]"),
        ("bins=abc", "bins must be a list of integers, e.g. bins=[10,30,100], got 'abc'"),
        ("bins=5", "bins must be a list of integers, e.g. bins=[10,30,100], got 5"),
        ("bins=[a]", "bins[0] must be an integer, got 'a'"),
        ("device=[1]", "device must be a string or null, got [1]"),
    ],
)
def test_wrong_types_are_refused_in_our_words(capsys, setting, message):
    assert _refused(capsys, ["mnist", "train", "with", setting]) == f"infodrop: error: {message}"


def test_wrong_type_in_a_float_list_is_refused_in_our_words(capsys):
    assert _refused(capsys, ["toy", "compare", "with", "bin_sizes=[x]"]) == "infodrop: error: bin_sizes[0] must be a number, got 'x'"


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # `infodrop mnist train --help | head -2`: the pipe closes while the command still writes.
    code = ("import sys\nfrom infodrop import cli\n"
            "def closed(argv):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "cli._main = closed\nsys.exit(cli.main(['mnist', 'train', '--help']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=subprocess_env(), check=False)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr


def test_the_demos_plane_measures_the_network_not_n():
    """The first plane a new user sees: the committed output of `infodrop demo` (its defaults,
    Fashion-MNIST) has at most a third of its mixture points saturated (at variance 0.25 it was
    20 of 26), and it was made at the variance the demo uses today."""
    from infodrop.plane import saturation_counts
    from infodrop.plane.record import PlaneDocument
    from tests._subprocess import REPO

    document = PlaneDocument.load(REPO / "docs" / "data" / "demo_plane.json")
    counts = saturation_counts(document)["auto"]
    assert counts["points"] == 26 and 3 * counts["saturated"] <= counts["points"]
    assert document.variance == 4.0
