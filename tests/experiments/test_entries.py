"""Entry groups shared by the experiments' Configs: written once, listed in reading order, and a
group entry given another default keeps its place, help and run-name rule."""

from __future__ import annotations

import dataclasses

import pytest

from infodrop.experiments import cifar, cluttered
from infodrop.experiments.entries import AllCNNNetwork, Machine, RunFiles, StepSGD, in_order, new_default


def _names(config_class: type) -> list[str]:
    return [spec.name for spec in dataclasses.fields(config_class)]


def test_in_order_lists_the_groups_entries_in_reading_order():
    @dataclasses.dataclass
    class Example(*in_order(Machine, RunFiles)):
        own: int = 0

    assert _names(Example) == _names(Machine) + _names(RunFiles) + ["own"]


def test_a_new_default_keeps_the_place_help_and_run_name_rule_of_the_group_entry():
    fields = {spec.name: spec for spec in dataclasses.fields(cluttered.Config)}
    shared = {spec.name: spec for spec in dataclasses.fields(StepSGD)}
    assert cluttered.Config().batch_size == 128 and cifar.Config().batch_size == 100
    assert fields["batch_size"].metadata == shared["batch_size"].metadata
    assert _names(cluttered.Config)[: len(_names(AllCNNNetwork))] == _names(AllCNNNetwork)


def test_a_new_default_of_an_entry_the_group_lacks_is_refused_naming_it():
    with pytest.raises(ValueError, match="StepSGD has no entry 'beta'"):
        new_default(StepSGD, "beta", 1.0)


def test_group_entries_are_not_shared_between_instances():
    first, second = cifar.Config(), cifar.Config()
    first.lr_milestones.append(300)
    assert second.lr_milestones == [80, 120, 160]
