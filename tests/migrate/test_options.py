"""MigrationOptions and the migrate package's public names (issue 15: errors name parameters, not flags)."""

from __future__ import annotations

import pytest

from smec_vdb.errors import ConfigError
from smec_vdb.migrate import MigrationOptions, choose_schedule, migrate  # noqa: F401 - the public import path


@pytest.mark.parametrize("kwargs", [
    {}, {"dim": 4, "dims": (8, 4)}, {"dims": (4, 8)}, {"dim": 4, "batch_size": 0}, {"dim": 4, "min_recall": 2.0},
    {"dim": 4, "on_bad_vector": "ignore"}, {"dim": 4, "check": True, "restart": True}, {"dim": 4, "verify_queries": 0},
    {"dim": 0}, {"dim": -3},
])
def test_library_errors_name_parameters_not_cli_flags(kwargs):
    with pytest.raises(ConfigError) as error:
        MigrationOptions(source="docs", **kwargs)
    assert "--" not in str(error.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"dim": 384}, "dim must be below the source width 384, found 384"),
    ({"dims": (512, 128)}, r"dims must be below the source width 384, found \[512, 128\]"),
])
def test_dims_at_or_above_the_source_width_are_refused(kwargs, message):
    opts = MigrationOptions(source="docs", **kwargs)
    with pytest.raises(ConfigError, match=message):
        opts.check_width(384)
    opts.check_width(1024)


def test_schedule_halves_down_to_the_target_dim():
    assert choose_schedule(384, 64) == (192, 96, 64)
    with pytest.raises(ConfigError, match="dim must be within"):
        choose_schedule(32, 32)


def test_cli_spells_parameters_as_its_flags():
    from smec_vdb.cli.migrate import _with_flags

    error = _with_flags(ConfigError("recall@10 0.5 < min_recall 0.9; set restart, or set on_bad_vector to skip"))
    assert str(error) == "recall@10 0.5 < --min-recall 0.9; pass --restart, or pass --on-bad-vector skip"


def test_the_plan_id_names_the_stores():
    """Two stores migrating a same-named collection with the same options never share a plan (issue 22)."""
    opts = MigrationOptions(source="docs", dim=8)
    one = opts.plan_id("emb", "qdrant-edge /srv/a", "qdrant-edge /srv/a")
    assert one == opts.plan_id("emb", "qdrant-edge /srv/a", "qdrant-edge /srv/a")
    assert len({one, opts.plan_id("emb", "qdrant-edge /srv/b", "qdrant-edge /srv/b"),
                opts.plan_id("emb", "qdrant-edge /srv/a", "milvus-lite /srv/a.db"),
                opts.plan_id("emb", "milvus-lite /srv/a.db", "qdrant-edge /srv/a")}) == 4
