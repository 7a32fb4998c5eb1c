"""The command line: the original sacred grammar translated into strict Hydra overrides."""

from __future__ import annotations

import pytest

from infodrop import cli
import dataclasses

from infodrop.experiments import cifar
from infodrop.experiments.naming import run_name, run_paths
from infodrop.experiments.session import compose


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fails(capsys, argv, *needles):
    """Run the CLI, expect exit status 2 and one line on stderr containing every needle."""
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "Traceback" not in captured.err
    message = captured.err.strip()
    assert len(message.splitlines()) == 1, message
    for needle in needles:
        assert needle in message, message
    return message


def test_with_words_become_overrides_and_named_configs_come_first():
    experiment, command, multirun, settings, presets = cli.parse_arguments(
        ["cifar", "train", "--multirun", "with", "beta=0.5,1", "softplus", "filter_percentage=0.25"]
    )
    assert (experiment, command, multirun) == ("cifar", "train", True)
    assert settings == ["beta=0.5,1", "filter_percentage=0.25"]
    assert presets == ["softplus"]
    overrides = cli.to_overrides(cifar, "cifar", settings, presets)
    assert overrides == ["activations=softplus", "lognorm_prior=true", "beta=0.5,1", "filter_percentage=0.25"]


def test_explicit_setting_wins_over_named_config_whatever_the_order():
    overrides = cli.to_overrides(cifar, "cifar", ["max_alpha=0.8"], ["fullcnn"])
    cfg = compose("cifar", overrides)
    assert cfg.max_alpha == 0.8 and cfg.single_dropout is True and list(cfg.lr_milestones) == [40, 80, 120]


def test_softplus_preset_is_softplus_with_log_normal_prior():
    cfg = compose("cifar", cli.to_overrides(cifar, "cifar", [], ["softplus"]))
    assert cfg.activations == "softplus" and cfg.lognorm_prior is True


def test_composed_config_is_read_only():
    cfg = compose("cifar", ["beta=1"])
    with pytest.raises(Exception):
        cfg.beta = 2.0


def test_unknown_entry_is_refused_naming_it(capsys):
    _fails(capsys, ["cifar", "print_config", "with", "bta=1"], "'bta'", "did you mean 'beta'")


def test_wrong_type_is_refused_naming_the_entry(capsys):
    _fails(capsys, ["cifar", "print_config", "with", "beta=abc"], "beta must be a number, got 'abc'")
    _fails(capsys, ["cifar", "print_config", "with", "lr_milestones=5"], "lr_milestones must be a list of integers")


def test_unknown_named_config_lists_the_valid_ones(capsys):
    _fails(capsys, ["cifar", "print_config", "with", "sofplus"], "'sofplus'", "softplus", "fullcnn")


def test_unknown_command_lists_the_valid_ones(capsys):
    _fails(capsys, ["cifar", "fly"], "'fly'", "prepare", "train", "test", "correlation", "plot", "print_config")


def test_unknown_experiment_lists_the_valid_ones(capsys):
    _fails(capsys, ["imagenet", "train"], "'imagenet'", "cifar", "cluttered", "demo")


def test_settings_without_with_are_refused(capsys):
    _fails(capsys, ["cifar", "train", "beta=1"], "with")


def test_sweep_needs_multirun(capsys):
    _fails(capsys, ["cifar", "print_config", "with", "beta=1,2"], "--multirun")


def test_missing_launcher_plugin_names_the_package(capsys):
    _fails(capsys, ["cifar", "print_config", "--multirun", "with", "hydra/launcher=submitit_slurm"], "hydra-submitit-launcher")


@pytest.mark.parametrize(
    "setting, entry",
    [
        ("dropout=dropconnect", "dropout"),
        ("beta=-0.5", "beta"),
        ("filter_percentage=0", "filter_percentage"),
        ("filter_percentage=-1", "filter_percentage"),
        ("max_alpha=0", "max_alpha"),
        ("max_alpha=1.5", "max_alpha"),
        ("activations=tanh", "activations"),
        ("lr_milestones=[120,80]", "lr_milestones"),
    ],
)
def test_bad_values_are_refused_before_any_work_naming_the_entry(capsys, tmp_path, setting, entry):
    # `train` with no data would fail on the missing files; the bad value must be caught first.
    message = _fails(capsys, ["cifar", "train", "with", setting], entry)
    assert "not found" not in message
    assert list(tmp_path.iterdir()) == []


def test_bad_value_in_a_later_sweep_job_is_refused_before_the_first_job(capsys, tmp_path):
    _fails(capsys, ["cifar", "train", "--multirun", "with", "beta=1,-1"], "beta")
    assert list(tmp_path.iterdir()) == []


def test_print_config_marks_the_changed_entries(capsys, tmp_path):
    assert cli.main(["cifar", "print_config", "with", "beta=0.5", "softplus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line[2:].split(" = ")[0]: line for line in lines if line[:2] in ("* ", "  ") and "  # " in line}
    assert set(by_name) == {f.name for f in dataclasses.fields(cifar.Config)}
    for name in ("beta", "activations", "lognorm_prior"):
        assert by_name[name].startswith("* "), by_name[name]
    for name in ("dropout", "max_alpha", "filter_percentage", "epochs"):
        assert by_name[name].startswith("  "), by_name[name]
    assert "# weight of the KL term" in by_name["beta"]
    assert "= 0.5" in by_name["beta"]
    # A single run leaves nothing of Hydra's behind (no outputs/, .hydra/ or logs).
    assert list(tmp_path.iterdir()) == []


def test_print_config_marks_nothing_for_the_defaults(capsys):
    assert cli.main(["cifar", "print_config"]) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("* ") for line in out.splitlines())
    assert "Run name: default" in out


def test_run_name_lists_changed_model_entries_only():
    cfg = compose("cifar", ["filter_percentage=0.25", "beta=1", "epochs=3", "data_dir=elsewhere", "progress=false"])
    assert run_name(cfg, cifar.Config) == "beta=1.0,filter_percentage=0.25"
    assert run_name(compose("cifar", ["beta=3"]), cifar.Config) == "default"
    paths = run_paths(cfg, cifar.Config, "cifar")
    assert str(paths.model_file) == "models/cifar/beta=1.0,filter_percentage=0.25.pt"
    assert str(paths.run_dir) == "runs/cifar/beta=1.0,filter_percentage=0.25"


def test_run_name_keeps_only_safe_characters():
    cfg = compose("cifar", ["lr_milestones=[40,80,120]", "single_dropout=true"])
    name = run_name(cfg, cifar.Config)
    assert name == "single_dropout=True,lr_milestones=40-80-120"
    assert all(c.isalnum() or c in "._=,-" for c in name)


def test_help_lists_experiments_and_demo(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "cifar" in out and "demo" in out and "print_config" in out


def test_demo_without_the_mnist_module_says_so(capsys, monkeypatch):
    monkeypatch.setattr("infodrop.experiments.load_experiment", lambda name: None)
    _fails(capsys, ["demo"], "infodrop.experiments.mnist")


def test_ctrl_c_exits_130_and_says_how_to_resume(capsys, monkeypatch):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setitem(cifar.COMMANDS, "train", interrupted)
    assert cli.main(["cifar", "train"]) == 130
    assert "resume" in capsys.readouterr().err


def test_network_entries_are_refused_by_the_network_before_any_data_is_read_and_draw_no_random_numbers(tmp_path):
    import torch

    from infodrop.experiments.config import ConfigError

    state = torch.random.get_rng_state()
    compose("cifar", ["softplus", "filter_percentage=0.25"])
    # The networks' constructors check their own entries on the meta device: no draws.
    assert torch.equal(torch.random.get_rng_state(), state)
    # The rule lives in the network: the smallest block (96 filters) needs filter_percentage >= 1/96.
    with pytest.raises(ConfigError, match="filter_percentage=0.01 leaves a block with 0 filters"):
        compose("cifar", ["filter_percentage=0.01"])
    with pytest.raises(ConfigError, match="lognorm_prior"):
        compose("cluttered", ["lognorm_prior=true"])


def test_a_list_entry_written_as_a_sweep_gets_the_bracket_form_suggested(capsys):
    _fails(capsys, ["mnist", "print_config", "with", "plane_subsets=1,4"], "write plane_subsets=[1,4]")
