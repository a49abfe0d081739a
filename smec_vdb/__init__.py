"""smec-vdb: Sequential Matryoshka Embedding Compression (arXiv 2510.12474) for vector databases."""

from smec_vdb.compress import Compressor, load
from smec_vdb.errors import SmecError

__all__ = ["Compressor", "SmecError", "load"]
__version__ = "0.1.0"
