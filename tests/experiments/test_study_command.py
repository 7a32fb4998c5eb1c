"""`infodrop study verdict`: the verdict table of every setting found under runs/<experiment>/,
grouped by run name without the seed, with CSV files and the seed-spread figure."""

from __future__ import annotations

import csv

import pytest

from infodrop.cli import main
from infodrop.experiments.study import setting_name
from tests.test_study import write_run


def test_a_setting_is_its_run_name_without_the_seed():
    assert setting_name("variance=4.0,dataset=fashion,seed=3") == "variance=4.0,dataset=fashion"
    assert setting_name("seed=2,variance=4.0") == "variance=4.0"
    assert setting_name("seed=1") == "default"
    assert setting_name("variance=4.0,dataset=fashion") == "variance=4.0,dataset=fashion"


def test_verdict_prints_one_row_per_setting_and_trajectory_and_writes_its_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    experiment = tmp_path / "runs" / "mnist"
    experiment.mkdir(parents=True)
    for seed in range(3):
        name = "variance=4.0" + (f",seed={seed}" if seed else "")
        folder = experiment / name
        write_run(tmp_path / "made", seed, [0.0, 5.0, 4.0]).parent.rename(folder)
    for seed in range(3):
        name = "variance=1.0" + (f",seed={seed}" if seed else "")
        write_run(tmp_path / "made1", seed, [0.0, 5.0, 5.1], variance=1.0).parent.rename(experiment / name)
    assert main(["study", "verdict"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "runs/study/mnist/verdicts.csv").open()))
    verdicts = {(row["setting"], row["subset"]): row["verdict"] for row in rows}
    assert verdicts == {("variance=1.0", "whole layer"): "does not compress", ("variance=1.0", "k=1"): "does not compress",
                        ("variance=4.0", "whole layer"): "compresses", ("variance=4.0", "k=1"): "compresses"}
    assert "variance=4.0 / whole layer: compresses: 3 of 3 seeds" in out
    assert (tmp_path / "plots/study/mnist/seed_summary.png").stat().st_size > 10_000
    assert (tmp_path / "runs/study/mnist/seed_summary.csv").exists()


def test_verdict_names_a_missing_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "mnist", 0, [0.0, 1.0])
    assert main(["study", "verdict", "with", "settings=['variance=9']"]) == 2
    assert "settings=['variance=9']: no runs of these" in capsys.readouterr().err
