"""Tests of infodrop.engine: the training loop, its run folder, checkpoints, resume and DDP.

All of them train a tiny conv net on a synthetic CIFAR-format problem (tests/_engine_scripts),
so they take milliseconds per epoch; the subprocess tests cost a Python start-up each.
"""

from __future__ import annotations

import datetime
import json
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import infodrop
import infodrop.engine as engine
from infodrop.checkpoints import load_checkpoint
from infodrop.distributed import ddp_info
from infodrop.engine import Checkpointing, Reporting, Training, fit
from infodrop.epoch_metrics import TrainingDiverged
from infodrop.evaluation import evaluate, recompute_batchnorm
from infodrop.runs import Run
from infodrop.seeding import set_seed
from tests._engine_scripts.tiny_problem import TinyNet, make_data, sgd, step_lr
from tests._subprocess import subprocess_env

SCRIPTS = Path(__file__).parent / "_engine_scripts"
TRAIN = make_data(256, seed=1)
TEST = make_data(128, seed=2)
METRIC_KEYS = {"epoch", "loss", "cross_entropy", "train_error", "test_error", "test_loss", "lr", "seconds"}


pytestmark = pytest.mark.usefixtures("one_thread")


def fit_with(model: nn.Module, train_set, test_set, *, checkpoint_path=None, checkpoint_every=10, config=None, run=None,
             epoch_hooks=(), progress=True, device=None, **training) -> dict:
    """fit with its options given one by one, sorted into their groups."""
    return fit(
        model, train_set, test_set, Training(**training),
        checkpointing=Checkpointing(path=checkpoint_path, every=checkpoint_every, config=config),
        reporting=Reporting(run=run, epoch_hooks=epoch_hooks, progress=progress), device=device,
    )


def train(tmp_path: Path | None = None, *, epochs: int = 4, seed: int = 0, **options) -> tuple[nn.Module, dict]:
    """The same tiny run the scripts do: model from set_seed(0), SGD with a step schedule; on the
    CPU unless ``device`` says otherwise, so the tests compare against CPU tensors on any machine."""
    set_seed(0)
    model = TinyNet()
    options.setdefault("make_scheduler", step_lr)
    options.setdefault("device", "cpu")
    metrics = fit_with(
        model, TRAIN, TEST, epochs=epochs, batch_size=32, make_optimizer=sgd, seed=seed, progress=False, **options
    )
    return model, metrics


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.fixture(scope="module")
def uninterrupted():
    """Four epochs straight through, the reference for every resume test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, metrics = train(epochs=4)
    torch.set_num_threads(threads)
    return model, metrics


def test_loss_goes_down_on_a_learnable_problem(tmp_path):
    run = Run(tmp_path)
    train(epochs=6, run=run)
    history = run.history()
    # Chance error is 3/4 on 4 balanced classes; the label is a sign of channel means, which a
    # conv net with global pooling learns within a few epochs.
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["test_error"] < 0.5


def test_same_seed_gives_identical_weights_and_another_seed_does_not(uninterrupted):
    set_seed(0)
    initial = TinyNet()
    again, _ = train(epochs=4)
    other_seed, _ = train(epochs=4, seed=1)
    assert same_weights(uninterrupted[0], again)
    assert not same_weights(uninterrupted[0], initial)  # training did change the weights
    assert not same_weights(uninterrupted[0], other_seed)  # the seed drives shuffling and noise


def test_metrics_jsonl_has_one_line_per_epoch_with_the_keys(tmp_path):
    run = Run(tmp_path / "run")
    _, final = train(epochs=3, run=run)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert all(set(record) == METRIC_KEYS for record in records)
    assert [record["lr"] for record in records] == [0.1, 0.1, 0.05]  # StepLR(step_size=2, gamma=0.5)
    assert records[-1] == pytest.approx(final)
    assert all(0 <= record["train_error"] <= 1 and 0 <= record["test_error"] <= 1 for record in records)


def test_run_writes_config_yaml_and_result_json_fields(tmp_path):
    run = Run(tmp_path / "run", config={"beta": 3.0, "task": {"epochs": 2}})
    assert "beta: 3.0" in (tmp_path / "run" / "config.yaml").read_text()
    _, final = train(epochs=2, run=run)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "completed"
    start = datetime.datetime.fromisoformat(result["start_time"])
    end = datetime.datetime.fromisoformat(result["end_time"])
    assert start.utcoffset() == datetime.timedelta(0) and start <= end
    assert result["results"]["test_error"] == final["test_error"]
    assert result["infodrop_version"] == infodrop.__version__
    assert result["torch_version"] == torch.__version__
    assert result["device"] == "cpu" and result["host"] and result["world_size"] == 1
    with pytest.raises(ValueError, match="status"):
        run.finish("done")


def test_checkpoint_every_k_epochs_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    real = engine.save_checkpoint
    monkeypatch.setattr(engine, "save_checkpoint", lambda state, path: (saved.append(state["epoch"]), real(state, path)))
    path = tmp_path / "checkpoint.pt"
    train(epochs=5, checkpoint_path=path, checkpoint_every=2, config={"width": 8})
    assert saved == [2, 4, 5]
    state = load_checkpoint(path)
    assert state["epoch"] == 5 and state["config"] == {"width": 8}
    assert {"model", "optimizer", "scheduler", "rng", "metrics"} <= set(state)


def test_resume_continues_from_last_epoch_and_matches_uninterrupted_run(tmp_path, uninterrupted):
    path = tmp_path / "checkpoint.pt"
    run = Run(tmp_path / "run")
    train(epochs=2, checkpoint_path=path, run=run)
    assert load_checkpoint(path)["epoch"] == 2
    resumed, final = train(epochs=4, checkpoint_path=path, run=run)
    assert [line["epoch"] for line in run.history()] == [1, 2, 3, 4]
    assert same_weights(resumed, uninterrupted[0])
    assert final["test_error"] == uninterrupted[1]["test_error"]
    # Resuming a finished run trains nothing and returns the stored metrics.
    again, metrics = train(epochs=4, checkpoint_path=path)
    assert same_weights(again, uninterrupted[0]) and metrics["epoch"] == 4


def test_resume_with_a_different_config_raises_naming_the_keys(tmp_path):
    path = tmp_path / "checkpoint.pt"
    train(epochs=1, checkpoint_path=path, config={"beta": 3.0, "model": {"width": 8}})
    with pytest.raises(ValueError, match=r"beta.*model\.width|model\.width.*beta") as error:
        train(epochs=2, checkpoint_path=path, config={"beta": 1.0, "model": {"width": 16}})
    assert str(path) in str(error.value)


@pytest.mark.end_to_end
def test_sigkill_mid_checkpoint_write_keeps_previous_checkpoint_and_resume_uses_it(tmp_path, uninterrupted):
    # The script's second checkpoint write dies half-way through its temp file.
    process = subprocess.run(
        [sys.executable, str(SCRIPTS / "train.py"), str(tmp_path), "--epochs", "4", "--every", "1", "--kill-at-save", "2"],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    path = tmp_path / "checkpoint.pt"
    assert load_checkpoint(path)["epoch"] == 1
    assert list(tmp_path.glob(".checkpoint.pt.*.tmp")), "the killed write should have left its temp file"

    run = Run(tmp_path / "run")
    assert [line["epoch"] for line in run.history()] == [1, 2]  # epoch 2 was logged, not saved
    set_seed(0)
    model = TinyNet()
    fit_with(model, TRAIN, TEST, epochs=4, batch_size=32, make_optimizer=sgd, make_scheduler=step_lr, run=run,
             checkpoint_path=path, config={"width": 8}, progress=False, device="cpu")
    assert not list(tmp_path.glob(".checkpoint.pt.*.tmp"))
    assert [line["epoch"] for line in run.history()] == [1, 2, 3, 4]
    assert same_weights(model, uninterrupted[0])


def test_keyboard_interrupt_saves_checkpoint_and_marks_run_interrupted(tmp_path, uninterrupted):
    calls = {"n": 0}

    def interrupting_loss(model, logits, targets):
        calls["n"] += 1
        if calls["n"] == 2 * 8 + 3:  # third batch of epoch 3 (8 batches per epoch)
            raise KeyboardInterrupt
        loss = nn.functional.cross_entropy(logits, targets)
        return loss, {"cross_entropy": loss.detach()}

    path = tmp_path / "checkpoint.pt"
    run = Run(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train(epochs=4, checkpoint_path=path, checkpoint_every=10, run=run, loss=interrupting_loss)
    assert load_checkpoint(path)["epoch"] == 2  # the last completed epoch, not the half-trained one
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "interrupted" and result["results"]["epoch"] == 2
    # The saved epoch resumes exactly.
    resumed, _ = train(epochs=4, checkpoint_path=path, run=run)
    assert same_weights(resumed, uninterrupted[0])


def test_epoch_hooks_called_with_epoch_and_their_dicts_logged(tmp_path):
    seen = []

    def hook(epoch, model):
        seen.append((epoch, type(model).__name__, model.training))
        return {"kl_total": 0.5 * epoch, "weight_norm": model.head.weight.norm()}

    run = Run(tmp_path)
    _, final = train(epochs=3, run=run, epoch_hooks=[hook, lambda epoch, model: None])
    assert seen == [(1, "TinyNet", False), (2, "TinyNet", False), (3, "TinyNet", False)]
    assert [line["kl_total"] for line in run.history()] == [0.5, 1.0, 1.5]
    assert isinstance(run.history()[0]["weight_norm"], float)  # tensors are logged as numbers
    assert final["kl_total"] == 1.5
    with pytest.raises(ValueError, match="test_error"):
        train(epochs=1, epoch_hooks=[lambda epoch, model: {"test_error": 0.0}])


def test_batch_transform_gets_the_training_batch_and_a_seeded_generator():
    draws = []

    def flip(images, generator):
        # The generator lives on the training device, beside the batch.
        assert generator.device == images.device
        draws.append(torch.rand(1, generator=generator, device=generator.device).item())
        return images.flip(-1)

    train(epochs=1, batch_transform=flip)
    first = list(draws)
    draws.clear()
    train(epochs=1, batch_transform=flip)
    assert len(first) == 8 and draws == first  # one call per batch, same stream for the same seed


def test_recompute_batchnorm_recomputes_running_stats_with_dropout_noise_off():
    set_seed(0)
    model = TinyNet()
    model.norm.momentum = 0.3
    model.norm.running_mean.fill_(5.0)
    model.noise_in.modes.clear()
    recompute_batchnorm(model, TRAIN, batch_size=32, device="cpu")
    assert set(model.noise_in.modes) == {False}  # the noisy layer never ran in training mode
    assert not model.training and not model.norm.training
    assert model.norm.momentum == 0.3
    # With momentum None the running mean is the average of the 8 equal-sized batch means,
    # i.e. the mean of the batch-norm input over the whole training set.
    with torch.no_grad():
        inputs = model.conv(TRAIN.tensors[0])
    expected = inputs.mean(dim=(0, 2, 3))
    # float32 sums over 256*64 values: relative rounding ~1e-6, far inside 1e-4.
    assert torch.allclose(model.norm.running_mean, expected, atol=1e-4)
    assert int(model.norm.num_batches_tracked) == 8


def test_evaluate_reports_error_loss_and_accuracy():
    set_seed(0)
    model = TinyNet()
    result = evaluate(model, TEST, batch_size=50, device="cpu")
    with torch.no_grad():
        logits = model(TEST.tensors[0])
    error = (logits.argmax(1) != TEST.tensors[1]).double().mean().item()
    assert result["error"] == error and result["accuracy"] == 1 - error
    # Batched float32 sums against one full-batch mean: agreement to ~1e-6 relative.
    assert result["loss"] == pytest.approx(nn.functional.cross_entropy(logits, TEST.tensors[1]).item(), rel=1e-5)
    assert not model.training


@pytest.mark.end_to_end
def test_torchrun_two_processes_on_cpu_complete_and_rank0_writes_the_files(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SCRIPTS / "train.py"), str(tmp_path), "--epochs", "2", "--every", "1",
    ]
    process = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "completed" and result["world_size"] == 2
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]  # one writer, no duplicates
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2 and len(state["rng"]) == 2
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # DDP kept the replicas identical
    assert ranks[0]["metrics"]["test_error"] == ranks[1]["metrics"]["test_error"]  # all-reduced


def test_load_checkpoint_on_a_corrupt_or_missing_file_raises_naming_it(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    with pytest.raises(ValueError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "options, name",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 2.5}, "epochs"),
        ({"checkpoint_every": 0}, "Checkpointing.every"),
        ({"batch_size": 1000}, "batch_size"),
        ({"epoch_hooks": [3]}, "epoch_hooks"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(options, name):
    arguments = {"epochs": 1, "batch_size": 32, "make_optimizer": sgd, "progress": False} | options
    with pytest.raises(ValueError, match=name):
        fit_with(TinyNet(), TRAIN, TEST, **arguments)


def test_ddp_info_reads_the_torchrun_environment(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert ddp_info() == (0, 0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ddp_info() == (3, 1, 4)


def test_run_writes_nothing_off_rank_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    run = Run(tmp_path / "run", config={"a": 1})
    run.log({"epoch": 1, "loss": 1.0})
    run.finish("completed")
    assert not (tmp_path / "run").exists()


def test_run_logs_numbers_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    # tensorboard is an optional extra; stand in for torch.utils.tensorboard to see the calls.
    import types

    scalars = []

    class FakeWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, global_step=None):
            scalars.append((tag, value, global_step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    run = Run(tmp_path)
    run.log({"epoch": 2, "loss": 0.5, "note": "text", "test_error": torch.tensor(0.25)})
    assert sorted(scalars) == [("loss", 0.5, 2), ("test_error", 0.25, 2)]


def test_config_from_omegaconf_is_stored_as_a_plain_dict(tmp_path):
    from omegaconf import OmegaConf

    config = OmegaConf.create({"beta": 3.0, "model": {"width": 8}})
    OmegaConf.set_readonly(config, True)
    Run(tmp_path / "run", config=config)
    assert OmegaConf.load(tmp_path / "run" / "config.yaml") == config
    path = tmp_path / "checkpoint.pt"
    train(epochs=1, checkpoint_path=path, config=config)
    assert load_checkpoint(path)["config"] == {"beta": 3.0, "model": {"width": 8}}


def test_a_non_finite_loss_stops_training_and_marks_the_run_failed(tmp_path):
    def nan_loss(model, logits, targets):
        loss = nn.functional.cross_entropy(logits, targets) * float("nan")
        return loss, {}

    run = Run(tmp_path)
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 1 \(training loss nan\); lower lr$"):
        train(epochs=2, run=run, loss=nan_loss)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "failed" and "training diverged at epoch 1" in result["results"]["error"]
    assert run.history() == []


def test_a_run_killed_before_its_first_checkpoint_starts_over_cleanly(tmp_path, uninterrupted):
    # What a SIGKILL inside the first checkpoint write leaves: epoch 1 logged, half a temp file.
    run = Run(tmp_path / "run")
    run.log({"epoch": 1, "loss": 9.9})
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"\x80\x02half a pickle")
    model, _ = train(epochs=4, checkpoint_path=tmp_path / "checkpoint.pt", run=run)
    assert [line["epoch"] for line in run.history()] == [1, 2, 3, 4]
    assert run.history()[0]["loss"] != 9.9
    assert not list(tmp_path.glob(".checkpoint.pt.*.tmp"))
    assert same_weights(model, uninterrupted[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: the CPU path is tested everywhere")
def test_training_on_cuda_is_deterministic_given_the_seed(tmp_path):
    run = Run(tmp_path / "run")
    first, metrics = train(epochs=2, device="cuda", run=run)
    again, _ = train(epochs=2, device="cuda")
    assert next(first.parameters()).device.type == "cuda"
    assert same_weights(first, again)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["device"].startswith("cuda")
    assert 0.0 <= metrics["test_error"] <= 1.0


_FAULTS_SCRIPT = """
import resource, torch
from infodrop.runtime import keep_freed_memory
keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB allocated, touched and freed, like an activation
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is for glibc only")
def test_freed_activation_buffers_are_reused_instead_of_faulted_in_again():
    def faults(**env) -> int:
        process = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], env=subprocess_env() | env,
                                 capture_output=True, text=True, timeout=300)
        assert process.returncode == 0, process.stderr[-2000:]
        return int(process.stdout.split()[-1])

    # glibc's defaults map each 64 MiB block afresh: 16,384 page faults per block, 40 blocks.
    # Kept in the heap, the blocks' pages are faulted in while the heap grows to its working size
    # (measured: 5 blocks' worth), then reused; a quarter of the default leaves room for that.
    default = faults(INFODROP_MALLOC="default")
    kept = faults()
    assert default > 35 * 16384
    assert kept < default / 4


# --------------------------------------------------------------------------- issue 11: nothing lost, nothing wrong


def test_flipped_bytes_in_the_latest_checkpoint_fall_back_to_the_previous_and_resume_exactly(tmp_path, uninterrupted):
    # Several offsets of a real checkpoint (pickle, tensor data, archive directory): every time
    # the result is the previous checkpoint (a warning) or the intact one, and the resumed run
    # ends with the uninterrupted run's weights, never with other numbers.
    path = tmp_path / "checkpoint.pt"
    train(epochs=3, checkpoint_path=path, checkpoint_every=1)
    good, previous = path.read_bytes(), (tmp_path / "checkpoint.prev.pt").read_bytes()
    for offset in (100, len(good) // 3, len(good) // 2, len(good) - 3000, len(good) - 200):
        damaged = bytearray(good)
        damaged[offset : offset + 64] = bytes(byte ^ 0x5A for byte in damaged[offset : offset + 64])
        path.write_bytes(damaged)
        (tmp_path / "checkpoint.prev.pt").write_bytes(previous)
        with pytest.warns(engine_warning()) as caught:
            model, metrics = train(epochs=4, checkpoint_path=path, checkpoint_every=1)
        messages = [str(w.message) for w in caught if issubclass(w.category, engine_warning())]
        assert len(messages) == 1 and "using the previous checkpoint" in messages[0] and "(epoch 2)" in messages[0]
        assert same_weights(model, uninterrupted[0]) and metrics["test_error"] == uninterrupted[1]["test_error"]


def engine_warning():
    from infodrop.io import RecoveredFileWarning

    return RecoveredFileWarning


def test_a_damaged_checkpoint_without_a_previous_one_is_refused_in_one_line(tmp_path):
    path = tmp_path / "checkpoint.pt"
    train(epochs=2, checkpoint_path=path, checkpoint_every=2)  # one save: no previous checkpoint
    data = bytearray(path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2):
        damaged = bytearray(data)
        damaged[offset : offset + 4096] = bytes(4096)
        path.write_bytes(damaged)
        with pytest.raises(ValueError) as caught:
            train(epochs=3, checkpoint_path=path)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and "delete it and train again" in message


def test_weights_that_turn_nan_stop_training_as_divergence_before_the_hooks_see_them(tmp_path):
    # The last step of epoch 1 turns the weights NaN: every training loss of the epoch was
    # computed before it and is finite; the test loss is not, and the hooks never see the NaN.
    class NanAtTheLastStep(torch.optim.SGD):
        steps = 0

        def step(self, closure=None):
            super().step(closure)
            NanAtTheLastStep.steps += 1
            if NanAtTheLastStep.steps == 8:  # 256 samples / 32 per batch
                with torch.no_grad():
                    self.param_groups[0]["params"][0].fill_(float("nan"))

    seen = []
    set_seed(0)
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 1 \(test loss nan\); lower lr$") as caught:
        fit_with(TinyNet(), TRAIN, TEST, epochs=2, batch_size=32, progress=False, device="cpu",
                 make_optimizer=lambda model: NanAtTheLastStep(model.parameters(), lr=0.01),
                 epoch_hooks=[lambda epoch, model: seen.append(epoch)], checkpoint_path=tmp_path / "c.pt")
    assert isinstance(caught.value, ValueError) and caught.value.epoch == 1
    assert seen == [] and not (tmp_path / "c.pt").exists()


def test_sigterm_mid_epoch_saves_the_last_complete_epoch_marks_the_run_terminated_and_resumes_exactly(tmp_path, uninterrupted):
    import os

    from infodrop.signals import Terminated

    calls = {"n": 0}

    def loss_that_gets_sigterm(model, logits, targets):
        calls["n"] += 1
        if calls["n"] == 2 * 8 + 3:  # third batch of epoch 3: SLURM's time is up
            os.kill(os.getpid(), signal.SIGTERM)
        loss = nn.functional.cross_entropy(logits, targets)
        return loss, {"cross_entropy": loss.detach()}

    path = tmp_path / "checkpoint.pt"
    run = Run(tmp_path / "run")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        train(epochs=4, checkpoint_path=path, checkpoint_every=10, run=run, loss=loss_that_gets_sigterm)
    assert signal.getsignal(signal.SIGTERM) == before  # fit puts the handler back
    assert load_checkpoint(path)["epoch"] == 2
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "terminated" and result["results"]["epoch"] == 2
    resumed, _ = train(epochs=4, checkpoint_path=path, run=run)
    assert same_weights(resumed, uninterrupted[0])
    assert [line["epoch"] for line in run.history()] == [1, 2, 3, 4]


def test_a_cut_off_last_line_of_metrics_jsonl_is_dropped_with_a_warning_on_resume(tmp_path, uninterrupted):
    path = tmp_path / "checkpoint.pt"
    run = Run(tmp_path / "run")
    train(epochs=2, checkpoint_path=path, checkpoint_every=1, run=run)
    text = run.metrics_path.read_text()
    run.metrics_path.write_text(text[: len(text) - 40])  # "Expecting ',' delimiter" before
    with pytest.warns(engine_warning(), match=r"metrics.jsonl: dropped its last line 2"):
        resumed, _ = train(epochs=4, checkpoint_path=path, checkpoint_every=1, run=run)
    assert [line["epoch"] for line in run.history()] == [1, 3, 4]  # epoch 2's line is lost, not the run
    assert same_weights(resumed, uninterrupted[0])


def test_a_run_has_one_writer_and_its_temp_files_are_cleaned_when_it_starts(tmp_path):
    from infodrop.io import RunLock

    leftovers = [tmp_path / "run" / ".metrics.jsonl.k2j4h5g6.tmp", tmp_path / "run" / ".plane.json.abcd_123.tmp"]
    leftovers[0].parent.mkdir()
    for leftover in leftovers:
        leftover.write_text("half")
    run = Run(tmp_path / "run", name="tiny/run")
    assert not any(leftover.exists() for leftover in leftovers)
    assert RunLock(tmp_path / "run").acquire().held  # re-entrant within this process
    run.close()
