"""Training throughput and data wait: the U-Net on 256x256 chips, through eoengine's Lightning loop.

Runs the real training path (``ChipDataset`` → DataLoader → ``TrainingTask`` in a Lightning
``Trainer``) and times every step: the wait for the next batch (from the end of one step to
the start of the next) and the step itself (forward, loss, backward, optimizer). The
baseline is the same model and optimizer fed one batch already in memory, i.e. the compute
alone. Prints samples/s, the data-wait share of step time (target: < 10%), and the ratio of
eoengine's throughput to the compute-only baseline, for chips held in memory (small
datasets) and streamed from the zarr store (datasets over the in-memory limit), with 0 and 2
loader workers.

    .venv/bin/python benchmarks/bench_train.py [--chips 96] [--batches 10] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from bench_loader import C, P, make_dataset
from lightning.pytorch.callbacks import Callback

from eoengine.config.schema import AugmentationConfig, ComponentConfig
from eoengine.models.heads import Head
from eoengine.models.registry import build_model
from eoengine.training import data as data_mod
from eoengine.training.losses import build_loss
from eoengine.training.module import TrainingTask

K = 2
WARMUP = 2


class StepTimer(Callback):  # type: ignore[misc]
    """Per step: time waiting for the batch, and time computing on it."""

    def __init__(self) -> None:
        self.wait: list[float] = []
        self.step: list[float] = []
        self._end: float | None = None
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._end = time.perf_counter()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._start = time.perf_counter()
        assert self._end is not None
        self.wait.append(self._start - self._end)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._end = time.perf_counter()
        self.step.append(self._end - self._start)


def _task() -> TrainingTask:
    torch.manual_seed(0)
    model = build_model("unet", C, K)
    head = Head("out", "segmentation", 0, K, 1.0, "", K)
    return TrainingTask(model, [head], [build_loss("cross_entropy")], ComponentConfig(name="AdamW", kwargs={"lr": 1e-3}))


def bench_eoengine(root: Path, batches: int, batch_size: int, workers: int, in_memory: bool) -> dict[str, float]:
    data_mod.IN_MEMORY_LIMIT = 2 * 1024**3 if in_memory else 0
    dm = data_mod.ChipDataModule(root, batch_size, workers, AugmentationConfig(gain=0.1, noise=0.02), seed=0)
    timer = StepTimer()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=batches + WARMUP, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], accelerator="cpu", use_distributed_sampler=False)
    trainer.fit(_task(), dm)
    wait, step = np.array(timer.wait[WARMUP:]), np.array(timer.step[WARMUP:])
    total = wait.sum() + step.sum()
    return {"samples_per_s": batch_size * len(step) / total, "wait_share": float(wait.sum() / total),
            "wait_ms": float(wait.mean() * 1000), "step_ms": float(step.mean() * 1000)}


def bench_compute_only(batches: int, batch_size: int) -> float:
    task = _task()
    opt = task.configure_optimizers()
    x = torch.randn(batch_size, C, P, P)
    y = {"mask": torch.randint(0, K, (batch_size, P, P))}
    times = []
    for i in range(batches + WARMUP):
        start = time.perf_counter()
        opt.zero_grad()
        loss = task._loss(task(x), y, "train", batch_size)
        loss.backward()
        opt.step()
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return batch_size * len(times) / sum(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chips", type=int, default=96)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    chips = rng.random((args.chips, C, P, P), dtype=np.float32)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        make_dataset(root, chips, compress=False)
        base = bench_compute_only(args.batches, args.batch_size)
        print(f"U-Net (depth 4, 32 base channels), {C}x{P}x{P} chips, batch {args.batch_size}, {args.batches} timed steps")
        print(f"compute only (batch already in memory): {base:.2f} samples/s")
        for label, workers, in_memory in (("in memory, 0 workers", 0, True), ("streamed, 0 workers", 0, False),
                                          ("streamed, 2 workers", 2, False)):
            r = bench_eoengine(root, args.batches, args.batch_size, workers, in_memory)
            print(f"eoengine {label:<22}: {r['samples_per_s']:.2f} samples/s, data wait {100 * r['wait_share']:.1f}% "
                  f"of step time ({r['wait_ms']:.1f} ms wait, {r['step_ms']:.0f} ms step), "
                  f"ratio to compute only {r['samples_per_s'] / base:.2f}")


if __name__ == "__main__":
    main()
