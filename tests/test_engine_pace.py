"""Tests of the engine at the device's pace (issue 12): data kept on the device gives the same
batches and results as the DataLoader, the loop reads nothing from the device per step, and
``compile=True`` trains.

On a CPU-only machine the device-resident path is forced with ``data_on_device=True``: the same
code runs, with the CPU as the device.
"""

from __future__ import annotations

import math
import traceback

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

import infodrop.batches as batches
import infodrop.engine as engine
from infodrop.checkpoints import load_checkpoint
from infodrop.engine import Checkpointing, Reporting, Training, fit
from infodrop.seeding import set_seed
from infodrop.models import AllCNN32
from infodrop.nn import kl_divergence
from tests._engine_scripts.tiny_problem import TinyNet, make_data, sgd, step_lr

TRAIN = make_data(256, seed=1)
TEST = make_data(100, seed=2)


pytestmark = pytest.mark.usefixtures("one_thread")


def flip_half(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augmentation with the engine's seeded generator: mirror a random half of the batch."""
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def train_tiny(*, epochs=3, checkpoint_path=None, **options) -> tuple[nn.Module, dict, list[dict]]:
    """TinyNet (multiplicative noise from torch's global generator) with augmentation and a last
    partial batch (256 = 8 x 30 + 16), on the CPU; returns the model, last metrics and history."""
    set_seed(0)
    model = TinyNet()
    history = []
    metrics = fit(
        model, TRAIN, TEST,
        Training(epochs=epochs, batch_size=30, make_optimizer=sgd, make_scheduler=step_lr, batch_transform=flip_half,
                 drop_last=False, seed=3, **options),
        checkpointing=Checkpointing(path=checkpoint_path, every=1),
        reporting=Reporting(progress=False, epoch_hooks=[lambda epoch, model: history.append(epoch)]),
        device="cpu",
    )
    return model, metrics, history


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def without_seconds(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "seconds"}


# --------------------------------------------------------------------------- same batches, same results


class IndexRecorder(nn.Module):
    """Inputs are (sample index, feature) rows; records the indices of every training batch and
    classifies from the feature alone."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 2)
        self.batches: list[list[int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches.append(x[:, 0].long().tolist())
        return self.linear(x[:, 1:])


def indexed_data(size: int) -> TensorDataset:
    feature = torch.randn(size, generator=torch.Generator().manual_seed(5))
    return TensorDataset(torch.stack([torch.arange(size, dtype=torch.float32), feature], dim=1), (feature > 0).long())


@pytest.mark.parametrize("data_on_device", [False, True])
def test_batch_order_is_the_one_earlier_versions_trained_on(data_on_device):
    # Earlier versions iterated the shuffled DataLoader through tqdm.auto's bar, which makes an
    # unused iterator first (one more draw from the loader's generator per epoch).
    data, seed, epochs = indexed_data(50), 7, 3
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(range(50), batch_size=8, shuffle=True, generator=generator, drop_last=True)
    expected = [batch.tolist() for _ in range(epochs) for batch in tqdm(loader, disable=True)]

    set_seed(0)
    model = IndexRecorder()
    fit(model, data, data, Training(epochs=epochs, batch_size=8, make_optimizer=sgd, seed=seed, data_on_device=data_on_device),
        reporting=Reporting(progress=False), device="cpu")
    assert model.batches == expected
    assert len(expected) == 3 * 6 and sorted(sum(expected[:6], [])) != list(range(48))  # shuffled, last 2 dropped


def test_index_loader_yields_the_data_loaders_batches_under_a_distributed_sampler():
    data = indexed_data(37)
    for rank in (0, 1):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=4)
        sampler.set_epoch(3)
        loader = DataLoader(data, batch_size=5, sampler=sampler, generator=torch.Generator().manual_seed(1), drop_last=True)
        expected = [inputs[:, 0].long().tolist() for inputs, _ in loader]
        indices = batches.index_loader(37, 5, sampler=sampler, generator=torch.Generator().manual_seed(1), drop_last=True)
        assert [batch.tolist() for batch in indices] == expected and len(expected) == 3


def test_data_kept_on_the_device_gives_the_same_weights_and_metrics_as_the_data_loader():
    loaded, loaded_metrics, _ = train_tiny(data_on_device=False)
    resident, resident_metrics, _ = train_tiny(data_on_device=True)
    assert same_weights(loaded, resident)
    assert without_seconds(loaded_metrics) == without_seconds(resident_metrics)
    # The run did train (weights moved from their initial values, the loss is a number).
    set_seed(0)
    assert not same_weights(loaded, TinyNet()) and math.isfinite(loaded_metrics["loss"])


def test_a_run_with_data_on_the_device_resumes_bit_exactly(tmp_path):
    straight, straight_metrics, _ = train_tiny(epochs=3, data_on_device=True)
    path = tmp_path / "checkpoint.pt"
    train_tiny(epochs=2, checkpoint_path=path, data_on_device=True)
    resumed, resumed_metrics, history = train_tiny(epochs=3, checkpoint_path=path, data_on_device=True)
    assert history == [3]  # only the last epoch was trained again
    assert same_weights(straight, resumed)
    assert without_seconds(straight_metrics) == without_seconds(resumed_metrics)


# --------------------------------------------------------------------------- the memory rule


def test_data_go_on_the_device_only_within_a_quarter_of_its_free_memory(monkeypatch):
    train_bytes = TRAIN.tensors[0].numel() * 4 + TRAIN.tensors[1].numel() * 8  # float32 images, int64 labels
    test_bytes = TEST.tensors[0].numel() * 4 + TEST.tensors[1].numel() * 8
    datasets = {"train_set": TRAIN, "test_set": TEST}

    def chosen(free, requested=None):
        monkeypatch.setattr(batches, "free_device_memory", lambda device: free)
        return batches.datasets_to_place(datasets, torch.device("cuda"), requested)

    assert chosen(4 * (train_bytes + test_bytes)) == ["train_set", "test_set"]
    # Room for the training set only: it goes first; the test set stays with the DataLoader.
    assert chosen(4 * (train_bytes + test_bytes) - 4) == ["train_set"]
    assert chosen(4 * train_bytes - 4) == ["test_set"]
    assert chosen(10**12, requested=False) == []
    with pytest.raises(ValueError, match="data_on_device=True but train_set needs"):
        chosen(4 * train_bytes - 4, requested=True)
    monkeypatch.undo()
    # Automatic on the CPU: the tensors are already where the model computes; forced, they are used in place.
    assert batches.datasets_to_place(datasets, torch.device("cpu"), None) == []
    placed = batches.place_on_device(datasets, torch.device("cpu"), True)
    assert placed["train_set"].inputs is TRAIN.tensors[0] and placed["test_set"].labels is TEST.tensors[1]


def test_data_on_device_true_refuses_a_data_set_that_is_not_two_tensors():
    listed = [(image, label) for image, label in TRAIN]
    with pytest.raises(ValueError, match="data_on_device=True needs train_set as a TensorDataset"):
        fit(TinyNet(), listed, TEST, Training(epochs=1, batch_size=32, make_optimizer=sgd, data_on_device=True),
            reporting=Reporting(progress=False), device="cpu")
    with pytest.raises(ValueError, match="data_on_device"):
        Training(epochs=1, batch_size=32, make_optimizer=sgd, data_on_device="yes")


def test_evaluation_batches_are_large_off_the_cpu_and_the_training_size_on_it():
    training = Training(epochs=1, batch_size=100, make_optimizer=sgd)
    assert training.test_batch_size(torch.device("cpu")) == 100
    assert training.test_batch_size(torch.device("cuda")) == engine.EVAL_BATCH_SIZE
    assert Training(epochs=1, batch_size=100, make_optimizer=sgd, eval_batch_size=10).test_batch_size(torch.device("cuda")) == 10


# --------------------------------------------------------------------------- no host synchronisation per step

# Tensor methods that hand a tensor's value to Python: on a GPU each one waits for the device.
READS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")


class ReadCounter:
    def __init__(self, monkeypatch):
        self.reads: list[bool] = []  # one entry per read: whether the progress bar's poll made it
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self._counting(getattr(torch.Tensor, name)))

    def _counting(self, method):
        def read(tensor, *args, **kwargs):
            stack = traceback.extract_stack(limit=6)
            self.reads.append(any(frame.name == "poll" and frame.filename.endswith("batches.py") for frame in stack))
            return method(tensor, *args, **kwargs)

        return read


def information_dropout_loss(model, logits, targets):
    cross_entropy = F.cross_entropy(logits, targets)
    kl = kl_divergence(model)
    return cross_entropy + 1e-3 * kl, {"cross_entropy": cross_entropy.detach(), "kl": kl.detach()}


def count_reads(monkeypatch, samples: int, *, progress: bool, data_on_device: bool) -> list[bool]:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(samples, 3, 32, 32, generator=generator), torch.randint(0, 10, (samples,), generator=generator))
    set_seed(0)
    model = AllCNN32(dropout="information", filter_percentage=0.05)
    counter = ReadCounter(monkeypatch)
    fit(model, data, data, Training(epochs=1, batch_size=4, loss=information_dropout_loss, make_optimizer=sgd,
                                    data_on_device=data_on_device),
        reporting=Reporting(progress=progress), device="cpu")
    monkeypatch.undo()
    return counter.reads


@pytest.mark.parametrize("data_on_device", [False, True])
def test_the_training_loop_reads_no_value_from_the_device_per_step(monkeypatch, data_on_device):
    # All-CNN-32 with information dropout and its KL in the loss: 4 against 32 steps of batch 4.
    few = count_reads(monkeypatch, 16, progress=False, data_on_device=data_on_device)
    many = count_reads(monkeypatch, 128, progress=False, data_on_device=data_on_device)
    assert len(few) == len(many) and not any(many)  # a fixed number per epoch, whatever its length
    # The progress bar reads only copies that have landed, at most once every PROGRESS_EVERY steps.
    shown = count_reads(monkeypatch, 128, progress=True, data_on_device=data_on_device)
    by_poll = sum(shown)
    assert len(shown) - by_poll == len(many)  # the loop itself reads nothing more with the bar on
    assert 1 <= by_poll <= math.ceil(32 / engine.PROGRESS_EVERY) + 1


# --------------------------------------------------------------------------- compile


def _compiler_available() -> tuple[bool, str]:
    import shutil

    if not hasattr(torch, "compile"):
        return False, "this torch has no torch.compile"
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return False, "torch.compile on the CPU needs a C++ compiler (g++), none on PATH"
    return True, ""


@pytest.mark.end_to_end
@pytest.mark.skipif(not _compiler_available()[0], reason=_compiler_available()[1])
def test_compile_true_trains_through_the_compiled_model_and_saves_plain_weights(tmp_path, monkeypatch):
    compiled = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module, **options: compiled.append(options) or real_compile(module, **options))
    path = tmp_path / "checkpoint.pt"
    model, metrics, _ = train_tiny(epochs=2, checkpoint_path=path, compile=True)
    assert compiled == [{"mode": None}]
    assert math.isfinite(metrics["loss"]) and 0 <= metrics["test_error"] <= 1
    # The checkpoint holds the model's own parameter names (no compiler prefix): an eager model loads it.
    eager = TinyNet()
    eager.load_state_dict(load_checkpoint(path)["model"])
    assert same_weights(eager, model)
    with pytest.raises(ValueError, match="compile"):
        Training(epochs=1, batch_size=32, make_optimizer=sgd, compile="fastest")
