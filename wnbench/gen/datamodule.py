"""The Lightning data module over the benchmark datasets (wnbench.gen.data), in its own module so that reading and
checking data (suite validation, ``--dry-run``) never imports Lightning."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from wnbench.errors import UserError

from .data import _MIXTURE_STD, dataset_info, mixture_modes, prepared_splits


class GenDataModule(pl.LightningDataModule):
    """One benchmark dataset: ``(x, y)`` batches from its fixed train / val / test splits.

    ``val_dataloader`` serves the validation split (per-epoch curves, model selection), ``test_dataloader``
    the test split (final metrics). The name is checked at construction and files are read in :meth:`setup`,
    so a bad name or a missing/corrupt file fails before any training starts. ``binarize`` thresholds images
    at 0.5 (for a Bernoulli likelihood that is a proper likelihood). Training batches drop the last partial
    batch, so batch-statistics norms never see a batch of one.
    """

    SPLITS = ("train", "val", "test")

    def __init__(
        self,
        name: str,
        data_dir: str | Path | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 500,
        split_seed: int = 0,
        binarize: bool = False,
        download: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.info = dataset_info(name)
        if batch_size < 2:
            raise UserError(
                f"batch_size must be >= 2 (batch-statistics norms need two samples), got {batch_size}"
            )
        self.name = name
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.split_seed = split_seed
        self.binarize = binarize
        self.download = download
        self.num_workers = num_workers
        self.sets: dict[str, TensorDataset] = {}

    @property
    def train_set(self) -> TensorDataset | None:
        return self.sets.get("train")

    @property
    def val_set(self) -> TensorDataset | None:
        return self.sets.get("val")

    @property
    def test_set(self) -> TensorDataset | None:
        return self.sets.get("test")

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        self.info, splits = prepared_splits(
            self.name, self.data_dir, self.split_seed, self.download, self.binarize, self.batch_size
        )
        for part in self.SPLITS:
            x, y = splits[part]
            self.sets[part] = TensorDataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))

    @property
    def modes(self) -> tuple[np.ndarray, float] | None:
        """Mode centres and std for mixture datasets, else None."""
        return mixture_modes(self.name) if self.name in _MIXTURE_STD else None

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
        )

    def _eval_loader(self, part: str) -> DataLoader:
        self.setup()
        return DataLoader(
            self.sets[part], batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        """The validation split (never the test split)."""
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def tensors(self, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """All of a split (``train``, ``val`` or ``test``) as ``(x, y)`` tensors (evaluation wants whole sets)."""
        self.setup()
        if split not in self.sets:
            raise ValueError(f"split must be one of {', '.join(self.SPLITS)}, got '{split}'")
        return self.sets[split].tensors[0], self.sets[split].tensors[1]
