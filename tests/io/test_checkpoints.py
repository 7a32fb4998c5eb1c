"""Verified checkpoints (issue 11, item 1): a checksum stored with every checkpoint and checked
on load, NaN/inf refused, the previous good checkpoint kept and used when the latest is damaged."""

import os
import warnings

import numpy as np
import pytest
import torch

from infodrop.io import (
    DamagedFileError,
    RecoveredFileWarning,
    load_checkpoint,
    previous_path,
    resume_checkpoint,
    save_checkpoint,
)
from infodrop.io.checksum import content_sha256
from infodrop.models import MLP


def _trained_state(epoch: int = 1, seed: int = 0) -> dict:
    """A checkpoint dict like the engine's: model, SGD momentum state, epoch, config, metrics, RNG."""
    torch.manual_seed(seed)
    model = MLP(in_features=20, hidden=(16, 8), num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 20)).sum().backward()
    optimizer.step()
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None,
        "epoch": epoch,
        "config": {"lr": 0.1, "hidden": [16, 8]},
        "metrics": {"epoch": epoch, "loss": 0.5},
        "rng": [{"torch": torch.get_rng_state(), "python": [3, [1, 2, 3], None]}],
    }


def _same(a: dict, b: dict) -> bool:
    return content_sha256(a) == content_sha256(b)


def test_a_checkpoint_round_trips_with_its_checksum_removed(tmp_path):
    state = _trained_state()
    save_checkpoint(state, tmp_path / "run.pt")
    raw = torch.load(tmp_path / "run.pt", weights_only=True)
    assert raw["format"] == "infodrop.checkpoint/2"  # the marker that makes a checksum required, hashed with the rest
    assert raw["sha256"] == content_sha256({**state, "format": "infodrop.checkpoint/2"})  # a plain torch checkpoint
    loaded = load_checkpoint(tmp_path / "run.pt")
    assert "sha256" not in loaded and _same(loaded, state)


def test_flipping_any_byte_of_a_checkpoint_gives_a_refusal_never_a_different_number(tmp_path):
    # Every 17th byte of the whole file (archive headers, pickle, tensor data), two bit patterns.
    state = _trained_state()
    save_checkpoint(state, tmp_path / "run.pt")
    data = (tmp_path / "run.pt").read_bytes()
    refused = identical = 0
    for offset in range(0, len(data), 17):
        for pattern in (0x01, 0xFF):
            damaged = bytearray(data)
            damaged[offset] ^= pattern
            (tmp_path / "bad.pt").write_bytes(damaged)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch warns about odd pickle protocols
                    loaded = load_checkpoint(tmp_path / "bad.pt")
            except DamagedFileError as error:
                assert str(tmp_path / "bad.pt") in str(error) and "\n" not in str(error)
                refused += 1
                continue
            # Bytes the loader does not use (archive padding, headers): the content is intact.
            assert _same(loaded, state), f"flipping byte {offset} gave a different checkpoint"
            identical += 1
    assert refused > 0.7 * (refused + identical)


def test_4_kib_of_random_bytes_written_into_a_checkpoint_are_refused(tmp_path):
    # The attack of the issue: 4 KiB of random bytes written into the middle of the file.
    model = MLP(in_features=200, hidden=(64, 32), num_classes=10)
    save_checkpoint({"model": model.state_dict(), "epoch": 1}, tmp_path / "run.pt")
    data = bytearray((tmp_path / "run.pt").read_bytes())
    rng = np.random.default_rng(0)
    for start in (len(data) // 4, len(data) // 2, len(data) - 5000):
        damaged = bytearray(data)
        damaged[start : start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        (tmp_path / "bad.pt").write_bytes(damaged)
        with pytest.raises(DamagedFileError, match="bad.pt.*delete it and train again"):
            load_checkpoint(tmp_path / "bad.pt")


def _save_with_valid_checksum(state: dict, path) -> None:
    """What a diverged run of an older version could have saved: NaN with a matching checksum."""
    torch.save({**state, "sha256": content_sha256(state)}, path)


def test_nan_parameters_are_refused_naming_the_entry_even_with_a_valid_checksum(tmp_path):
    state = _trained_state()
    state["model"]["layers.0.0.weight"] = torch.full_like(state["model"]["layers.0.0.weight"], float("nan"))
    _save_with_valid_checksum(state, tmp_path / "run.pt")
    with pytest.raises(DamagedFileError, match=r"run.pt holds NaN or inf in model.layers.0.0.weight.*lower lr"):
        load_checkpoint(tmp_path / "run.pt")


def test_inf_in_the_optimizer_state_is_refused_naming_the_entry(tmp_path):
    state = _trained_state()
    buffer = state["optimizer"]["state"][0]["momentum_buffer"]
    buffer[0] = float("inf")
    _save_with_valid_checksum(state, tmp_path / "run.pt")
    with pytest.raises(DamagedFileError, match=r"NaN or inf in optimizer.state.0.momentum_buffer"):
        load_checkpoint(tmp_path / "run.pt")


def test_a_non_finite_state_is_never_saved_so_the_last_good_checkpoint_stays(tmp_path):
    save_checkpoint(_trained_state(epoch=1), tmp_path / "run.pt")
    before = (tmp_path / "run.pt").read_bytes()
    state = _trained_state(epoch=2)
    state["model"]["layers.0.0.bias"][0] = float("nan")
    with pytest.raises(ValueError, match=r"refusing to save checkpoint .*run.pt: model.layers.0.0.bias holds NaN"):
        save_checkpoint(state, tmp_path / "run.pt")
    assert (tmp_path / "run.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_an_old_checkpoint_without_a_checksum_loads_and_is_still_checked_for_nan(tmp_path):
    state = _trained_state()
    torch.save(state, tmp_path / "old.pt")  # as infodrop wrote them before checksums
    assert _same(load_checkpoint(tmp_path / "old.pt"), state)
    state["model"]["layers.0.0.bias"][0] = float("nan")
    torch.save(state, tmp_path / "old_nan.pt")
    with pytest.raises(DamagedFileError, match="old_nan.pt holds NaN or inf"):
        load_checkpoint(tmp_path / "old_nan.pt")


def test_a_malicious_pickle_is_refused_by_the_weights_only_load(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DamagedFileError, match="evil.pt cannot be read"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_the_previous_good_checkpoint_is_kept_beside_the_latest(tmp_path):
    path = tmp_path / "run.pt"
    for epoch in (1, 2, 3):
        save_checkpoint(_trained_state(epoch=epoch), path)
    assert previous_path(path) == tmp_path / "run.prev.pt"
    assert load_checkpoint(path)["epoch"] == 3
    assert load_checkpoint(tmp_path / "run.prev.pt")["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.prev.pt", "run.pt"]


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_with_a_one_line_warning(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(_trained_state(epoch=1), path)
    save_checkpoint(_trained_state(epoch=2), path)
    data = bytearray(path.read_bytes())
    data[-2000:-1000] = bytes(1000)
    path.write_bytes(data)
    with pytest.warns(RecoveredFileWarning) as caught:
        state, used = resume_checkpoint(path)
    assert used == tmp_path / "run.prev.pt" and state["epoch"] == 1
    (message,) = [str(w.message) for w in caught]
    assert "\n" not in message and str(path) in message and "run.prev.pt (epoch 1)" in message


def test_a_damaged_latest_is_replaced_without_pushing_out_the_previous_good_one(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(_trained_state(epoch=1), path)
    save_checkpoint(_trained_state(epoch=2), path)
    path.write_bytes(b"garbage")
    save_checkpoint(_trained_state(epoch=3), path)
    assert load_checkpoint(path)["epoch"] == 3
    assert load_checkpoint(previous_path(path))["epoch"] == 1


def test_a_save_killed_between_its_two_renames_resumes_from_the_previous(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(_trained_state(epoch=1), path)
    save_checkpoint(_trained_state(epoch=2), path)
    os.replace(path, previous_path(path))  # the state after step 4 of save_checkpoint
    with pytest.warns(RecoveredFileWarning, match="run.pt is missing"):
        state, used = resume_checkpoint(path)
    assert state["epoch"] == 2 and used == previous_path(path)


def test_both_checkpoints_damaged_is_refused_naming_both(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(_trained_state(epoch=1), path)
    save_checkpoint(_trained_state(epoch=2), path)
    path.write_bytes(b"x")
    previous_path(path).write_bytes(b"y")
    with pytest.raises(DamagedFileError, match=r"run.pt and the previous one .*run.prev.pt are both unusable"):
        resume_checkpoint(path)


def test_nothing_to_resume_from_is_none_and_a_missing_file_is_named(tmp_path):
    assert resume_checkpoint(tmp_path / "run.pt") is None
    with pytest.raises(ValueError, match="run.pt does not exist"):
        load_checkpoint(tmp_path / "run.pt")
