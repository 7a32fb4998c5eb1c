"""Session-wide test settings.

Triton's interpreter (``TRITON_INTERPRET=1``) runs Triton kernels with numpy on CPU tensors, so
the fused mixture kernel (infodrop.mi.triton_mixture) is tested on machines without a GPU. Triton
reads the variable when its kernels, its own library functions included, are decorated, i.e.
when triton is first imported: it is set here, before any test module is imported, and only
where CUDA is absent (on a GPU the same tests run the compiled kernel). Nothing else in the
suite uses triton on a CPU, where it cannot compile anyway.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def one_thread():
    """One intra-op torch thread for a test, the count restored after it. The CI machine has 2 cores
    shared with other test processes: one thread is both faster there and makes in-process and
    subprocess runs use the same reduction order. Modules take it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_cost_line(monkeypatch):
    """Each test is a fresh process as far as the plane's once-per-process cost line goes."""
    import infodrop.plane.report

    monkeypatch.setattr(infodrop.plane.report, "_COST_LINE_PRINTED", False)
