"""Session-wide test settings.

Triton's interpreter (``TRITON_INTERPRET=1``) runs Triton kernels with numpy on CPU tensors, so
the fused mixture kernel (infodrop.mi.triton_mixture) is tested on machines without a GPU. Triton
reads the variable when its kernels, its own library functions included, are decorated, i.e.
when triton is first imported: it is set here, before any test module is imported, and only
where CUDA is absent (on a GPU the same tests run the compiled kernel). Nothing else in the
suite uses triton on a CPU, where it cannot compile anyway.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
