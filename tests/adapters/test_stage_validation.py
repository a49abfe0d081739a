"""A search stage's ``limit`` and ``ef`` are refused unless they are integers >= 1 (``ef`` may be None: the
schema's ef_search), with one typed error naming the stage and the value, before the engine is asked."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.adapters.validation import check_stages
from smec_vdb.backend import CollectionSchema, Resolution, SearchStage
from smec_vdb.errors import ConfigError

SCHEMA = CollectionSchema((Resolution("d4", 4),))
QUERY = np.ones(4, dtype=np.float32)


@pytest.mark.parametrize("limit, ef", [(10, None), (10, 16), (np.int64(3), np.int32(64))])
def test_integer_limits_and_efs_pass(limit, ef):
    (stage,) = check_stages(SCHEMA, [SearchStage("d4", QUERY, limit, ef=ef)])
    assert (stage.limit, stage.ef) == (limit, ef)


@pytest.mark.parametrize("knob, value", [("limit", 0), ("limit", 2.5), ("limit", True), ("ef", 0), ("ef", -1),
                                         ("ef", 2.5), ("ef", "abc"), ("ef", True)])
def test_a_bad_limit_or_ef_is_one_config_error_naming_it(knob, value):
    stage = SearchStage("d4", QUERY, **{"limit": 10, knob: value})
    with pytest.raises(ConfigError, match=rf"stage on 'd4': {knob} must be an integer >= 1, found {value!r}"):
        check_stages(SCHEMA, [stage])
