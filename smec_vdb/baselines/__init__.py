"""Baseline compressors behind the :class:`~smec_vdb.compress.base.Compressor` interface.

Each class implements ``fit(vectors, dims, config, examples, progress, validation)`` and is
listed by name in :mod:`smec_vdb.compress.registry`, which ``smec_vdb.load`` and ``train`` read.

Example::

    from smec_vdb.compress.registry import method_class
    comp = method_class("pca").fit(corpus_vectors, [128, 64, 32])
"""
