"""Migration of an existing collection into a verified multi-resolution SMEC collection, by phase:

- :mod:`~smec_vdb.migrate.options`: what to do (:class:`MigrationOptions`) and progress events;
- :mod:`~smec_vdb.migrate.plan`: read the source's layout, survey it, refuse before writing, train;
- :mod:`~smec_vdb.migrate.copy`: read, encode and upsert overlapped (:mod:`~smec_vdb.migrate.pipeline`),
  checkpointed at a cadence (:mod:`~smec_vdb.migrate.checkpoint`);
- :mod:`~smec_vdb.migrate.verify`: every point compared in one streaming pass over source and target
  (:mod:`~smec_vdb.migrate.compare`, :mod:`~smec_vdb.migrate.ranges`), recall@10 with a bounded candidate
  budget (:mod:`~smec_vdb.migrate.recall`);
- :mod:`~smec_vdb.migrate.simulate`: the dry run, the plan without writing;
- :mod:`~smec_vdb.migrate.run`: :func:`migrate`, which runs, resumes, re-syncs or checks;
- :mod:`~smec_vdb.migrate.distributed` and :mod:`~smec_vdb.migrate.ray`: the same on Ray Data.
"""

from smec_vdb.migrate.options import (
    CHECKPOINT_KEY,
    COMPLETE_KEY,
    DEFAULT_COMPRESSOR_STORE,
    MigrationEvent,
    MigrationInterrupted,
    MigrationOptions,
)
from smec_vdb.migrate.plan import choose_schedule, inspect_source
from smec_vdb.migrate.run import migrate
from smec_vdb.migrate.simulate import dry_run

__all__ = [
    "CHECKPOINT_KEY", "COMPLETE_KEY", "DEFAULT_COMPRESSOR_STORE", "MigrationEvent", "MigrationInterrupted",
    "MigrationOptions", "choose_schedule", "dry_run", "inspect_source", "migrate",
]
