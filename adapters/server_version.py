"""The version a server reports, read with :mod:`packaging.version` (PEP 440).

Servers decorate their versions: Qdrant ``v1.17.0-dev``, the PyPI Milvus 2.3.5 server
``v2.3.5-lite``, Milvus Lite over TCP ``milvus_lite-3.2.2``. :func:`leading_version` takes the
longest PEP 440 version at the start of the string (packaging's own grammar,
:data:`packaging.version.VERSION_PATTERN`), so a suffix packaging does not know is ignored.

Example::

    leading_version("v2.3.5-lite").release      # (2, 3, 5)
    leading_version("milvus_lite-3.2.2")        # None: not a version
"""

from __future__ import annotations

import re

from packaging.version import VERSION_PATTERN, Version

_LEADING = re.compile(r"\s*" + VERSION_PATTERN, re.VERBOSE | re.IGNORECASE)


def leading_version(reported: str) -> Version | None:
    """The PEP 440 version that ``reported`` starts with, None if it starts with none."""
    found = _LEADING.match(reported)
    return Version(found.group(0)) if found else None
