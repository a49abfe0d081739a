"""Compressors: map D-dim embeddings to a nested family of lower-dim embeddings."""

from smec_vdb.compress.base import Compressor
from smec_vdb.compress.artifact import load, register

__all__ = ["Compressor", "load", "register"]
