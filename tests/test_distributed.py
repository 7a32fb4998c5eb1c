"""infodrop.distributed: the torchrun environment and the one owner of the process group."""

from __future__ import annotations

import socket

import torch.distributed as dist

from infodrop.distributed import is_main_process, process_group


def _one_process_torchrun(monkeypatch) -> None:
    """The environment torchrun gives a single process (gloo on this machine's loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                        ("MASTER_PORT", str(port))):
        monkeypatch.setenv(name, value)


def test_without_torchrun_no_process_group_is_started(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with process_group(cuda=False) as started:
        assert not started and not dist.is_initialized()
    assert is_main_process()


def test_an_inner_holder_reuses_the_group_and_only_its_starter_ends_it(monkeypatch):
    # What a sweep under torchrun does: the command holds the group, each fit finds it there.
    _one_process_torchrun(monkeypatch)
    assert not dist.is_initialized()
    with process_group(cuda=False) as outer:
        assert outer and dist.is_initialized()
        with process_group(cuda=False) as inner:
            assert not inner
        assert dist.is_initialized()
        assert is_main_process()
    assert not dist.is_initialized()


def test_rank_one_is_not_the_main_process(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not is_main_process()
