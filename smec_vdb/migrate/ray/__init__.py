"""Ray Data as Ray's own connectors do it (issue 24): a source, an encoder, a sink, and ``write_smec``.

- :class:`~smec_vdb.migrate.ray.source.SmecSource`: a ``Datasource`` reading a collection's key
  ranges in parallel (:mod:`smec_vdb.migrate.ranges`);
- :class:`~smec_vdb.migrate.ray.encoder.SmecEncoder`: the SMEC encoder, a callable class for
  ``map_batches`` (actors; ``num_gpus`` to give each a GPU), the compressor from the object store;
- :class:`~smec_vdb.migrate.ray.sink.SmecSink`: a ``Datasink`` upserting into a multi-resolution
  collection, with per-task checkpoints (:class:`~smec_vdb.migrate.ray.progress.RangeProgress`)
  folded in ``on_write_complete``;
- :func:`~smec_vdb.migrate.ray.write.write_smec`: the encoder and the sink behind one call, for an
  ingestion job that makes embeddings in Ray.

``migrate --workers`` composes the three (:mod:`smec_vdb.migrate.distributed`). The parts import Ray
when first used (``pip install 'smec-vdb[ray]'``).
"""

from typing import Any

__all__ = ["SmecEncoder", "SmecSink", "SmecSource", "write_smec"]
_HOMES = {"SmecEncoder": "encoder", "SmecSink": "sink", "SmecSource": "source", "write_smec": "write"}


def __getattr__(name: str) -> Any:
    """The public parts, imported (with Ray) on first use: the package's pure modules import without Ray."""
    if name not in _HOMES:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"smec_vdb.migrate.ray.{_HOMES[name]}"), name)
