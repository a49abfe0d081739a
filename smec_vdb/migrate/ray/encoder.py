"""The compression step of a Ray Data pipeline: a callable class for ``map_batches`` (SMEC, paper §3).

Each actor gets the compressor once, through Ray's object store (``ray.put`` on the driver; no
path that every node must share), pins torch to ``threads`` threads and, when it was given a GPU
(``map_batches(..., num_gpus=1)``), moves the compressor there. A batch's ``vector`` column (the
full-width vectors) becomes one ``smec:<name>`` column per stored resolution (``full``: the input
normalised, ``d<dim>``: its SMEC encoding); rows not flagged ``_encode`` (or ``_usable``) get zeros.

Example::

    ds.map_batches(SmecEncoder, fn_constructor_kwargs={"compressor": ray.put(comp), "resolutions": {"d128": 128}},
                   concurrency=4, num_gpus=1)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from smec_vdb.migrate.ray.columns import ENCODE, USABLE, VECTOR, encoded


class SmecEncoder:
    """``resolutions``: stored name → dim (the collection's record); ``compressor``: an object ref or a compressor."""

    def __init__(self, compressor: Any, resolutions: Mapping[str, int], threads: int = 1) -> None:
        import ray
        import torch

        torch.set_num_threads(threads)
        self.compressor = ray.get(compressor) if isinstance(compressor, ray.ObjectRef) else compressor
        if ray.get_gpu_ids() and torch.cuda.is_available():
            self.compressor = self.compressor.to("cuda")
        self.resolutions = dict(resolutions)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = batch.pop(VECTOR)
        x = (np.stack(list(x)) if x.dtype == object else x).astype(np.float32, copy=False)  # list columns: objects
        flag = ENCODE if ENCODE in batch else USABLE
        usable = np.asarray(batch[flag], dtype=bool) if flag in batch else np.ones(len(x), dtype=bool)
        dims = sorted(set(self.resolutions.values()), reverse=True)
        out = {d: np.zeros((len(x), d), dtype=np.float32) for d in dims}
        if usable.any():
            for d, matrix in self.compressor.encode_many(x[usable], dims).items():
                out[d][usable] = matrix
        for name, dim in self.resolutions.items():
            batch[encoded(name)] = out[dim]
        return batch
