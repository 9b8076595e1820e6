"""Training features: augmentation, balanced sampling, schedules, accumulation, clipping, precision, NaN stops, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import REPO, save_config, tiny_config

from eoengine.config.load import load_config
from eoengine.config.schema import AugmentationConfig
from eoengine.datasets.build import build_dataset
from eoengine.errors import EOError
from eoengine.training.augment import augment, gaussian_blur
from eoengine.training.data import EpochSampler, balanced_weights
from eoengine.training.optim import build_scheduler


def test_geometric_augmentation_moves_every_map_with_the_image() -> None:
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 8, 8)
    maps = {"mask": image[0].long(), "values": image[1] * 2}
    cfg = AugmentationConfig()
    for seed in range(8):
        out, outmaps = augment(image, maps, cfg, torch.Generator().manual_seed(seed))
        assert torch.equal(outmaps["mask"], out[0].long()) and torch.equal(outmaps["values"], out[1] * 2)
    again = augment(image, maps, cfg, torch.Generator().manual_seed(3))
    first = augment(image, maps, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], first[0])  # same seed, same draw


def test_radiometric_augmentation_changes_the_image_only() -> None:
    image = torch.randn(5, 16, 16)
    mask = torch.randint(0, 3, (16, 16))
    cfg = AugmentationConfig(hflip=False, vflip=False, rot90=False, gain=0.2, offset=0.5, noise=0.1, blur=1.5, p=1.0)
    out, maps = augment(image, {"mask": mask}, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(maps["mask"], mask) and not torch.allclose(out, image)
    only_gain = AugmentationConfig(hflip=False, vflip=False, rot90=False, gain=0.2, p=1.0)
    g, _ = augment(image, {}, only_gain, torch.Generator().manual_seed(1))
    ratio = g / image
    per_channel = ratio.reshape(5, -1)
    assert torch.allclose(per_channel, per_channel[:, :1].expand_as(per_channel), atol=1e-4)  # one gain per channel
    assert ((per_channel[:, 0] >= 0.8) & (per_channel[:, 0] <= 1.2)).all()
    off = AugmentationConfig(hflip=False, vflip=False, rot90=False, gain=0.2, offset=0.5, noise=0.1, blur=1.5, p=0.0)
    same, _ = augment(image, {}, off, torch.Generator().manual_seed(0))
    assert torch.equal(same, image)  # p = 0: nothing changes


def test_blur_keeps_the_mean_and_smooths() -> None:
    img = torch.zeros(2, 21, 21)
    img[:, 10, 10] = 1.0
    out = gaussian_blur(img, 1.0)
    assert out.shape == img.shape and abs(float(out.sum()) - 2.0) < 1e-4
    assert float(out[0, 10, 10]) < 0.2 and float(out[0, 10, 11]) > 0.05


def test_balanced_sampling_draws_rare_classes_more_often() -> None:
    counts = np.array([[100, 0], [100, 0], [100, 0], [90, 10], [0, 100]], dtype=float)
    w = balanced_weights(counts)
    assert w[4] > w[3] > w[0] and abs(w.sum() - 1) < 1e-9
    sampler = EpochSampler(5, seed=1, weights=w)
    draws = np.bincount([i % 5 for e in range(40) for i in (sampler.set_epoch(e), list(sampler))[1]], minlength=5)
    assert draws[4] > draws[0] * 3
    sampler.set_epoch(7)
    assert list(sampler) == list(sampler)  # an epoch's draw depends on (seed, epoch) only


def test_ddp_ranks_split_each_epoch() -> None:
    ranks = [EpochSampler(10, seed=2, rank=r, replicas=2) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    a, b = (list(s) for s in ranks)
    assert len(a) == len(b) == 5 and not set(a) & set(b) and {i % 10 for i in a + b} == set(range(10))


def test_schedulers_by_name() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler("warmup_cosine", opt, {"max_epochs": 6, "warmup_epochs": 2, "start_factor": 0.1})
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[1] < lrs[2] and lrs[2] == pytest.approx(1.0)
    assert lrs[2] > lrs[3] > lrs[4] > lrs[5]  # cosine decay after the warm-up
    with pytest.raises(EOError, match="warmup_epochs"):
        build_scheduler("warmup_cosine", opt, {"max_epochs": 2, "warmup_epochs": 3})


def test_accumulation_clipping_precision_and_one_cycle(tmp_path: Path) -> None:
    from eoengine.training.train import train

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{
        "training.accumulate_grad_batches": 2, "training.gradient_clip_val": 0.5, "training.precision": "bf16-mixed",
        "training.scheduler": {"name": "OneCycleLR", "kwargs": {"max_lr": 0.05}}, "training.epochs": 2,
        "training.sampling": "balanced", "training.augmentation": {"gain": 0.1, "noise": 0.05},
    })))
    built = build_dataset(cfg)
    result = train(cfg)
    n_train = built.manifest.splits["train"]
    batches = -(-n_train // 8)
    ckpt = torch.load(result.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2 * -(-batches // 2)  # one optimizer step per two batches
    mlflow.set_tracking_uri(result.tracking_uri)
    run = mlflow.get_run(result.run_id)
    assert run.data.params["training.precision"] == "bf16-mixed" and run.data.params["training.gradient_clip_val"] == "0.5"
    lrs = [m.value for m in mlflow.MlflowClient().get_metric_history(result.run_id, "lr")]
    assert lrs and all(0 < lr < 0.05 and lr != pytest.approx(0.01) for lr in lrs)  # one-cycle drives the rate
    assert run.data.tags["env.torch"].startswith("2.") and "git.commit" in run.data.tags


def test_nan_loss_stops_naming_the_last_good_checkpoint(tmp_path: Path) -> None:
    from eoengine.training.train import train

    cfg = load_config(save_config(tmp_path, tiny_config(tmp_path, **{
        "training.loss": {"name": "conftest.NanAfter", "kwargs": {"calls": 12}}, "training.epochs": 20})))
    build_dataset(cfg)
    with pytest.raises(EOError, match=r"loss became nan at epoch [1-9].*last good checkpoint: .*best\.ckpt.*gradient_clip_val"):
        train(cfg)


@pytest.mark.skipif(sys.platform != "linux", reason="gloo DDP on Linux")
def test_ddp_with_two_cpu_processes(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, **{"training.strategy": "ddp", "training.devices": 2, "training.accelerator": "cpu",
                                   "training.epochs": 2})
    path = save_config(tmp_path, cfg)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # mlflow exports the last URI set
    env |= {"EOENGINE_PROGRESS": "0", "PYTHONPATH": str(REPO / "tests")}
    exe = Path(sys.executable).parent / "eoengine"
    build = subprocess.run([str(exe), "dataset", "build", str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(exe), "train", str(path)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sync_dist" not in run.stderr  # every epoch-level metric is reduced across the processes
    runs = [p for p in (tmp_path / "out" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "model" / "eoengine-model.json").exists()  # one run, written once
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    found = mlflow.search_runs(experiment_names=["tiny"])
    assert len(found) == 1 and found["params.training.strategy"][0] == "ddp"
    assert found["tags.world_size"][0] == "2" and found["tags.strategy"][0] == "DDPStrategy"


def test_only_rank_zero_is_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    from eoengine.training.train import is_primary_process

    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert is_primary_process()
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert is_primary_process()
    for key in ("SLURM_PROCID", "RANK", "LOCAL_RANK"):
        monkeypatch.setenv(key, "3")
        assert not is_primary_process(), key
        monkeypatch.setenv(key, "0")
