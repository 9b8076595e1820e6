"""Lightning callbacks: per-epoch MLflow logging, log lines and progress reports, RNG state in checkpoints, resume hints."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from eoengine.progress import ProgressReporter, ProgressTask


class EpochLogger(Callback):  # type: ignore[misc]
    """Send each epoch's metrics to MLflow and keep them for the curves."""

    def __init__(self, history: dict[str, list[tuple[int, float]]] | None = None) -> None:
        self.history: dict[str, list[tuple[int, float]]] = history or {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import mlflow

        if not trainer.is_global_zero:
            return  # one process of a distributed run tracks
        epoch = trainer.current_epoch
        if any(step == epoch for series in self.history.values() for step, _ in series):
            return  # a resumed run may redo an epoch it logged before stopping (same values: seeded)
        scalars = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        scalars["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        for k, v in scalars.items():
            self.history.setdefault(k, []).append((epoch, v))
        mlflow.log_metrics(scalars, step=epoch)


class RNGState(Callback):  # type: ignore[misc]
    """Keep the global random states in checkpoints.

    A resumed run then draws what it would have drawn (dropout masks, for instance) had it
    never stopped.
    """

    def state_dict(self) -> dict[str, Any]:
        # plain tensors, lists and numbers only: checkpoints load with torch's weights_only unpickler
        name, keys, pos, has_gauss, gauss = np.random.get_state()  # type: ignore[misc]
        version, internal, gauss_next = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": [int(version), list(internal), gauss_next],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        name, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state_dict["python"]
        random.setstate((version, tuple(internal), gauss_next))


class ResumeHint(Callback):  # type: ignore[misc]
    """On an interruption, say how to pick the run up again."""

    def __init__(self, command: str, checkpoint: Path) -> None:
        self.command = command
        self.checkpoint = checkpoint

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):
            return
        if self.checkpoint.exists():
            print(f"\ntraining interrupted; resume with: {self.command}", file=sys.stderr)
        else:
            print("\ntraining interrupted before its first epoch ended: nothing to resume; "
                  "start again with: eoengine train CONFIG", file=sys.stderr)


class EpochLines(Callback):  # type: ignore[misc]
    """One line per epoch on stdout, for logs and pipes where progress bars would be carriage-return noise.

    ``epoch 3/10: train_loss 0.5123, val_loss 0.6012, val_miou 0.4123 (4.2 s)``: epochs count
    from 1, and the line shows the losses, the watched metric and the headline scores.
    """

    HEADLINE = ("accuracy", "miou", "f1", "rmse", "r2")

    def __init__(self, monitor: str, prefixes: list[str]) -> None:
        self.headline = [monitor] + [f"val_{p}{k}" for p in prefixes for k in self.HEADLINE]
        self.started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        shown = sorted((k for k in metrics if k.endswith("loss")), key=lambda k: not k.startswith("train")) + self.headline
        scores = ", ".join(f"{k} {metrics[k]:.4f}" for k in dict.fromkeys(shown) if k in metrics)
        took = time.monotonic() - self.started
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {scores} ({took:.1f} s)", flush=True)


class ReportedEpochs(Callback):  # type: ignore[misc]
    """Report a run's epochs to a progress reporter: a ``training`` task, one step per epoch ended.

    A resumed run starts at the epochs it already did; the task is closed when training ends,
    stops early or fails. Only the first process of a distributed run reports.
    """

    def __init__(self, reporter: ProgressReporter) -> None:
        self.reporter = reporter
        self.task: ProgressTask | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.task = self.reporter.task("training", trainer.max_epochs or 0, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.task is not None:
            self.task.advance()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.task is not None:
            self.task.close()
            self.task = None
