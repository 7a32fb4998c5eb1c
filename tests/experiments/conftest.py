import pytest


@pytest.fixture
def inside(workdir, monkeypatch):
    """The module's ``workdir`` fixture (a working directory with prepared data and trained runs)
    as the current directory for one test, the previous one restored after it."""
    monkeypatch.chdir(workdir)
    return workdir
