import pytest


@pytest.fixture
def inside(workdir, monkeypatch):
    """The module's ``workdir`` fixture (a working directory with prepared data and trained runs)
    as the current directory for one test, the previous one restored after it."""
    monkeypatch.chdir(workdir)
    return workdir


# The golden tests of old checkpoints stay as they were written (issue 18: "unedited"); their two
# resume tests train, so the end_to_end marker is added here rather than in their file.
_GOLDEN_END_TO_END = ("test_old_checkpoints.py::test_an_old_mnist_checkpoint_at_epoch_1_of_2_resumes_and_trains_epoch_2",
                      "test_old_checkpoints.py::test_an_old_cifar_checkpoint_resumes_when_the_run_is_made_longer")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.endswith(_GOLDEN_END_TO_END):
            item.add_marker(pytest.mark.end_to_end)
