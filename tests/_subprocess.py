"""Environment for the tests that start Python processes (scripts, torchrun)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict:
    """This process's environment with the repository's sources first on PYTHONPATH, one OpenMP
    thread per process, and no torchrun variables leaking in from an outer run."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env
