"""The information-plane tracker as a PyTorch Lightning callback (the ICLR 2023 paper's own code
trains with Lightning). Needs the optional extra: ``pip install -e ".[lightning]"``.

    from infodrop.plane import InformationPlaneCallback

    callback = InformationPlaneCallback((train_images, train_labels), (test_images, test_labels),
                                       output="plane.json", every=1)
    lightning.Trainer(max_epochs=10, callbacks=[callback]).fit(module, train_loader)

The LightningModule's ``forward`` must return the logits (N x classes), and the tracked dropout
layer must be one of its modules (``layer=None``: the first Gaussian/Information dropout layer).
The callback builds an :class:`infodrop.plane.InformationPlane` when the fit starts, records the
initialisation as epoch 0 (unless the fit resumes past it), and records after every ``every``-th
training epoch and after the last one (epochs counted from 1, as ``infodrop.engine`` counts them),
with the same file format. Under a multi-process strategy (DDP) every rank records, the ranks
share the mixture estimation (``distributed``) and rank 0 writes the file. The numbers of each
record go to the trainer's logger as ``plane_train_i_xz`` and so on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from infodrop.checks import check_int
from infodrop.plane.tracker import InformationPlane

__all__ = ["InformationPlaneCallback", "LIGHTNING_MISSING"]

LIGHTNING_MISSING = (
    "InformationPlaneCallback needs PyTorch Lightning, which is not installed; "
    'install the extra with: pip install -e ".[lightning]"'
)

try:
    from lightning.pytorch import Callback as _Callback
except ImportError:  # the optional extra is absent: the name exists and says how to get it
    _Callback = None


if _Callback is None:

    class InformationPlaneCallback:  # type: ignore[no-redef]
        """Placeholder without Lightning: using it raises ImportError naming the extra."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(LIGHTNING_MISSING)

else:

    class InformationPlaneCallback(_Callback):  # type: ignore[no-redef]
        """Record the information plane of one dropout layer during a Lightning fit.

        Args:
            train_data, test_data: as :class:`infodrop.plane.InformationPlane` (a Dataset of
                (input, label) pairs or a pair of arrays); ``test_data`` may be None.
            every: record after every ``every``-th epoch (and after the last).
            record_initial: record the untrained network as epoch 0 when the fit starts at epoch 0.
            output: the plane JSON (default: ``plane.json`` in the trainer's ``default_root_dir``).
            **options: every other keyword of :class:`~infodrop.plane.InformationPlane` (settings,
                layer, device, ... or the settings as keywords: estimators, bins, noise_samples, ...).
        """

        def __init__(self, train_data: Any, test_data: Any = None, *, every: int = 1, record_initial: bool = True,
                     output: str | os.PathLike | None = None, **options: Any) -> None:
            super().__init__()
            for name in ("model", "append"):
                if name in options:
                    raise ValueError(f"{name} is set by the callback (the LightningModule; resuming); leave it out")
            self.train_data = train_data
            self.test_data = test_data
            self.every = check_int(every, "every")
            self.record_initial = bool(record_initial)
            self.output = None if output is None else Path(output)
            self.options = options
            self.plane = None

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            output = self.output if self.output is not None else Path(trainer.default_root_dir) / "plane.json"
            resuming = trainer.current_epoch > 0
            self.plane = InformationPlane(pl_module, self.train_data, self.test_data, output=output, append=resuming,
                                          **self.options)
            if self.record_initial and not resuming:
                self._record(trainer, 0)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            epoch = trainer.current_epoch + 1  # Lightning counts from 0 and has finished this one
            if epoch % self.every == 0 or epoch == trainer.max_epochs:
                self._record(trainer, epoch)

        def _record(self, trainer: Any, epoch: int) -> None:
            summary = self.plane.record(epoch).summary()
            if trainer.logger is not None and trainer.is_global_zero and summary:
                trainer.logger.log_metrics(summary, step=trainer.global_step)
