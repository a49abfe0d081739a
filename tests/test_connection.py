"""Connections (smec_vdb/connection.py): the location grammar of connect(), environment defaults,
conflicting arguments refused, secrets kept out of repr — all judged from the engine records, nothing opened."""

from __future__ import annotations

import pytest

from smec_vdb.connection import Connection
from smec_vdb.errors import ConfigError

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize("location, engine, url, path, target", [
    ("qdrant-edge:///./smec_data", "qdrant-edge", None, "./smec_data", "qdrant-edge"),
    ("qdrant:///path/to/dir", "qdrant", None, "path/to/dir", "qdrant-local"),
    ("qdrant:////abs/dir", "qdrant", None, "/abs/dir", "qdrant-local"),
    ("qdrant:///:memory:", "qdrant", None, ":memory:", "qdrant-local"),
    ("milvus:///x.db", "milvus", None, "x.db", "milvus-lite"),
    ("qdrant://db.example:6333", "qdrant", "http://db.example:6333", None, "qdrant-server"),
    ("QDRANT+HTTPS://db.example:6333", "qdrant", "https://db.example:6333", None, "qdrant-server"),
    ("milvus://h:19530", "milvus", "http://h:19530", None, "milvus-server"),
    ("milvus+tcp://h:19530", "milvus", "tcp://h:19530", None, "milvus-server"),
    ("tcp://h:19530", "milvus", "tcp://h:19530", None, "milvus-server"),  # only Milvus takes tcp://
])
def test_the_location_grammar(location, engine, url, path, target):
    connection = Connection.parse(location, env=NO_ENV)
    assert (connection.engine, connection.url, connection.path, connection.target) == (engine, url, path, target)


def test_an_http_url_is_ambiguous_unless_the_engine_is_named():
    with pytest.raises(ConfigError, match=r"could be a server of backend 'qdrant' or 'milvus': write "
                                          r"qdrant\+http://h:6333 or milvus\+http://h:6333, or pass backend="):
        Connection.parse("http://h:6333", env=NO_ENV)
    assert Connection.parse("http://h:6333", backend="qdrant", env=NO_ENV).target == "qdrant-server"
    assert Connection.parse("./store", backend="qdrant-edge", env=NO_ENV).path == "./store"


@pytest.mark.parametrize("location, backend, message", [
    ("milvus:///x.db", "qdrant", "names backend 'milvus', but backend='qdrant' was given"),
    ("qdrant-edge://host:1", None, r"'qdrant-edge' is embedded: write qdrant-edge:///relative/path"),
    ("qdrant+tcp://h:1", None, "reaches a server over http, https, not 'tcp'"),
    ("ftp://h/x", None, "unknown scheme 'ftp'"),
    ("./store", None, "names no engine"),
    ("", None, "non-empty string"),
    ("milvus:///", None, "names no path and no host"),
    ("qdrant-edge:///x", "qdrant-edge", None),  # consistent: accepted
])
def test_conflicting_or_unknown_locations_are_errors(location, backend, message):
    if message is None:
        Connection.parse(location, backend=backend, env=NO_ENV)
        return
    with pytest.raises(ConfigError, match=message):
        Connection.parse(location, backend=backend, env=NO_ENV)


def test_arguments_the_engine_cannot_take_are_refused():
    for call, message in (
        (lambda: Connection("qdrant", url="http://h:1", path="p"), "either url or path"),
        (lambda: Connection("qdrant-edge", url="http://h:1"), "'qdrant-edge' is embedded"),
        (lambda: Connection("milvus", url="x.db"), "server url starts with http:// or https:// or tcp://"),
        (lambda: Connection("qdrant"), r"needs a path \(a directory, or :memory:\) or a url \(http://host:6333; env QDRANT_URL\)"),
        (lambda: Connection.resolve("qdrant-edge", path="x", prefer_grpc=True), "options of backend 'qdrant'"),
        (lambda: Connection.resolve("milvus", url="http://h:1", api_key="k"), "takes no option 'api_key'.*token"),
        (lambda: Connection.resolve("qdrant", path="p", timeout=5), "timeout applies to a server url"),
        (lambda: Connection("milvus", path="x.db", credential="t0ken"), "token applies to a server url"),
        (lambda: Connection("qdrant-edge", path="x", credential="k"), "'qdrant-edge' takes no credential"),
        (lambda: Connection.resolve("qdrant", url="http://h:1", timeout=-1), "positive number of seconds"),
        (lambda: Connection.resolve("qdrant", url="http://h:1", prefer_grpc="yes"), "true or false"),
    ):
        with pytest.raises(ConfigError, match=message):
            call()


def test_the_environment_fills_in_what_was_not_given():
    env = {"QDRANT_URL": "http://q:6333", "QDRANT_API_KEY": "k3y", "QDRANT_TIMEOUT": "7.5",
           "QDRANT_PREFER_GRPC": "true", "MILVUS_URI": "http://m:19530", "MILVUS_TOKEN": "t0ken"}
    qdrant = Connection.resolve("qdrant", env=env)
    assert (qdrant.url, qdrant.credential, dict(qdrant.settings)) == ("http://q:6333", "k3y",
                                                                       {"timeout": 7.5, "prefer_grpc": True})
    assert Connection.resolve("qdrant", timeout=2, env=env).settings["timeout"] == 2  # given beats env
    local = Connection.resolve("qdrant", path="p", env=env)  # a path: no url, secret or settings from env
    assert (local.url, local.credential, dict(local.settings)) == (None, None, {})
    milvus = Connection.parse("milvus://h:1", env=env)
    assert milvus.url == "http://h:1" and milvus.credential == "t0ken"
    assert Connection.resolve("qdrant-edge", env=env).path == "./smec_data"  # the embedded default
    for bad, message in (({"QDRANT_TIMEOUT": "soon"}, "QDRANT_TIMEOUT must be a number"),
                         ({"QDRANT_PREFER_GRPC": "maybe"}, "QDRANT_PREFER_GRPC must be true or false")):
        with pytest.raises(ConfigError, match=message):
            Connection.resolve("qdrant", url="http://h:1", env=bad)


def test_secrets_never_appear_in_repr():
    connection = Connection.parse("qdrant+https://admin:pa55@db:6333", api_key="s3cret", env=NO_ENV)
    shown = repr(connection)
    assert "s3cret" not in shown and "pa55" not in shown and "credential=***" in shown
    with pytest.raises(ConfigError) as caught:
        Connection.parse("http://admin:pa55@db:6333", env=NO_ENV)
    assert "pa55" not in str(caught.value)
