"""The Lightning module: a model, its output heads (losses, metrics) and an optimizer."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from eoengine.config.schema import ComponentConfig
from eoengine.models.heads import TARGET_KEY, Head, split_outputs
from eoengine.training.heads import HEAD_SCALARS, head_metrics, loss_input, metric_input
from eoengine.training.optim import build_optimizer, build_scheduler, scheduler_kwargs

Batch = tuple[torch.Tensor, dict[str, torch.Tensor]]


class TrainingTask(L.LightningModule):
    """Train a model on one or more heads; logs ``train_loss``, ``val_loss`` and ``val_<metric>`` each epoch."""

    def __init__(
        self,
        model: nn.Module,
        heads: list[Head],
        losses: list[nn.Module],
        optimizer: ComponentConfig,
        scheduler: ComponentConfig | None = None,
        monitor: str = "val_miou",
    ) -> None:
        super().__init__()
        self.model = model
        self.heads = heads
        self.losses = nn.ModuleList(losses)
        self.optimizer_cfg = optimizer
        self.scheduler_cfg = scheduler
        self.monitor = monitor
        self.val_metrics = [head_metrics(h, validation=True) for h in heads]
        self.test_metrics = [head_metrics(h) for h in heads]
        self.last_test: dict[str, dict[str, Any]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model output for a batch of normalised images."""
        return self.model(x)

    def _loss(self, out: torch.Tensor, targets: dict[str, torch.Tensor], stage: str, n: int) -> torch.Tensor:
        total = out.sum() * 0.0
        for head, loss_fn, pred in zip(self.heads, self.losses, split_outputs(out, self.heads), strict=True):
            value = loss_fn(*loss_input(head, pred, targets[TARGET_KEY[head.type]]))
            if head.prefix:
                self.log(f"{stage}_{head.prefix}loss", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
            total = total + head.weight * value
        return total

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """One optimisation step."""
        x, targets = batch
        loss = self._loss(self(x), targets, "train", len(x))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {self.current_epoch}")
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        return loss

    def _update(self, metrics: list[Any], out: torch.Tensor, targets: dict[str, torch.Tensor]) -> None:
        for head, acc, pred in zip(self.heads, metrics, split_outputs(out, self.heads), strict=True):
            acc.to(out.device).update(*metric_input(head, pred, targets[TARGET_KEY[head.type]]))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate validation loss and metrics."""
        x, targets = batch
        out = self(x)
        self.log("val_loss", self._loss(out, targets, "val", len(x)), on_step=False, on_epoch=True, batch_size=len(x),
                 sync_dist=True)
        self._update(self.val_metrics, out, targets)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation scores."""
        for head, acc in zip(self.heads, self.val_metrics, strict=True):
            scores = acc.compute()
            for k in HEAD_SCALARS[head.type]:
                self.log(f"val_{head.prefix}{k}", float(scores[k]), prog_bar=k in ("miou", "rmse"), sync_dist=True)
            acc.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate test metrics."""
        x, targets = batch
        self._update(self.test_metrics, self(x), targets)

    def score_as(self, validation: bool) -> None:
        """Make the next ``trainer.test`` score as the validation split is scored (or as a test split)."""
        self.test_metrics = [head_metrics(h, validation) for h in self.heads]

    def on_test_epoch_end(self) -> None:
        """Keep the full test scores (per class, confusion) of every head for reports."""
        self.last_test = {}
        for head, acc in zip(self.heads, self.test_metrics, strict=True):
            self.last_test[head.name] = acc.compute()
            for k in HEAD_SCALARS[head.type]:
                self.log(f"test_{head.prefix}{k}", float(self.last_test[head.name][k]), sync_dist=True)
            acc.reset()

    def configure_optimizers(self) -> Any:
        """The configured optimizer and (optional) scheduler."""
        opt = build_optimizer(self.optimizer_cfg.name, self.parameters(), self.optimizer_cfg.kwargs)
        if self.scheduler_cfg is None:
            return opt
        name = self.scheduler_cfg.name
        kwargs = scheduler_kwargs(name, self.scheduler_cfg.kwargs, int(self.trainer.estimated_stepping_batches),
                                  int(self.trainer.max_epochs or 1))
        sched = build_scheduler(name, opt, kwargs)
        per_step = name == "OneCycleLR"
        interval = "step" if per_step else "epoch"
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": self.monitor, "interval": interval}}
