"""The Lightning module: a model, a loss, an optimizer and segmentation metrics."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from eoengine.config.schema import ComponentConfig
from eoengine.training.metrics import SCALARS, SegmentationMetrics
from eoengine.training.optim import build_optimizer, build_scheduler


class SegmentationTask(L.LightningModule):
    """Train a segmentation model; logs ``train_loss`` and ``val_<metric>`` each epoch."""

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        num_classes: int,
        optimizer: ComponentConfig,
        scheduler: ComponentConfig | None = None,
        monitor: str = "val_miou",
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.optimizer_cfg = optimizer
        self.scheduler_cfg = scheduler
        self.monitor = monitor
        self.val_metrics = SegmentationMetrics(num_classes)
        self.test_metrics = SegmentationMetrics(num_classes)
        self.last_test: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of normalised images."""
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step."""
        x, y = batch
        loss = self.loss(self(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {self.current_epoch}")
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate validation loss and confusion."""
        x, y = batch
        logits = self(x)
        self.log("val_loss", self.loss(logits, y), on_step=False, on_epoch=True, batch_size=len(x))
        self.val_metrics.to(logits.device).update(logits, y)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation scores."""
        scores = self.val_metrics.compute()
        for k in SCALARS:
            self.log(f"val_{k}", scores[k], prog_bar=k in ("miou", "accuracy"))
        self.val_metrics.reset()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate test confusion."""
        x, y = batch
        logits = self(x)
        self.test_metrics.to(logits.device).update(logits, y)

    def on_test_epoch_end(self) -> None:
        """Keep the full test scores (per class, confusion) for reports."""
        self.last_test = self.test_metrics.compute()
        for k in SCALARS:
            self.log(f"test_{k}", self.last_test[k])
        self.test_metrics.reset()

    def configure_optimizers(self) -> Any:
        """The configured optimizer and (optional) scheduler."""
        opt = build_optimizer(self.optimizer_cfg.name, self.parameters(), self.optimizer_cfg.kwargs)
        if self.scheduler_cfg is None:
            return opt
        sched = build_scheduler(self.scheduler_cfg.name, opt, self.scheduler_cfg.kwargs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": self.monitor}}
