"""Baseline compressors behind the :class:`~smec_vdb.compress.base.Compressor` interface.

Each class has ``fit(vectors, dims, config, examples, progress) -> Compressor`` and is
registered under its method name so ``smec_vdb.load`` restores it.

Example::

    from smec_vdb.baselines import BASELINES
    comp = BASELINES["pca"].fit(corpus_vectors, [128, 64, 32])
"""

from smec_vdb.baselines.matryoshka_adaptor import MatryoshkaAdaptorCompressor
from smec_vdb.baselines.pca import PCACompressor
from smec_vdb.baselines.search_adaptor import SearchAdaptorCompressor
from smec_vdb.baselines.truncation import TruncationCompressor

BASELINES = {
    "truncate": TruncationCompressor,
    "pca": PCACompressor,
    "mrl": MatryoshkaAdaptorCompressor,
    "search-adaptor": SearchAdaptorCompressor,
}

__all__ = [
    "BASELINES",
    "MatryoshkaAdaptorCompressor",
    "PCACompressor",
    "SearchAdaptorCompressor",
    "TruncationCompressor",
]
