"""A connection to one engine, checked before anything is opened: which engine, a url or a path, the
secret and the server settings, and the target it opens, judged from the engine's record
(:mod:`smec_vdb.engines`) without connecting.

Two ways to get one, both reading only the records, never an engine's name:

- :meth:`Connection.resolve` from arguments, with the environment's defaults filled in (the url from
  the engine's ``url_env`` such as ``QDRANT_URL`` / ``MILVUS_URI``, its credential such as
  ``QDRANT_API_KEY`` / ``MILVUS_TOKEN``, its settings such as ``QDRANT_TIMEOUT``), so that a worker
  on another node gets everything from the driver;
- :meth:`Connection.parse` from one location string, the grammar :func:`smec_vdb.connect` takes:

  ================================  ======================================================
  ``<engine>:///relative/path``     an embedded store (``qdrant-edge:///./smec_data``, ``milvus:///x.db``)
  ``<engine>:////absolute/path``    the same, absolute (``qdrant:////data/qdrant``); ``qdrant:///:memory:``
  ``<engine>://host:port``          a server, over the engine's first URL scheme (http)
  ``<engine>+<scheme>://host:port`` a server over ``scheme`` (``qdrant+https://…``, ``milvus+tcp://…``)
  ``http://host:port``              a server, only when one registered engine takes ``http``, or with
                                    ``engine=``; an http(s) URL could be Qdrant or Milvus, so it is an
                                    error that says how to write it
  a path without ``://``            an embedded store of ``engine=``
  ================================  ======================================================

Unknown schemes, an engine argument that contradicts the scheme, a url for an embedded-only engine,
a setting a connection cannot take: all :class:`~smec_vdb.errors.ConfigError`, never a guess.
Secrets never appear in ``repr`` (and credentials inside URLs are masked).

Example::

    Connection.parse("milvus:///vectors.db").target              # 'milvus-lite'
    Connection.parse("qdrant+https://db.example:6333").target    # 'qdrant-server'
    Connection.resolve("qdrant", url="http://h:6333", timeout=10).open()
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from smec_vdb.engines import DEFAULT_ENGINE, Engine, Setting, adapter_class, engine, engines
from smec_vdb.errors import ConfigError, mask_credentials

if TYPE_CHECKING:
    from smec_vdb.backend import Backend


@dataclass(frozen=True)
class Connection:
    """How to open one engine: the arguments of its adapter. Checked on construction; the environment
    is read only by :meth:`resolve` and :meth:`parse`."""

    engine: str
    url: str | None = None
    path: str | None = None
    credential: str | None = field(default=None, repr=False)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        record = engine(self.engine)
        if self.url is not None and self.path is not None:
            raise ConfigError(f"give either url or path for backend {record.name!r}, not both "
                              f"(url={self.url!r}, path={self.path!r})")
        if self.url is None and self.path is None:
            raise ConfigError(f"backend {record.name!r} needs {_ways(record)}")
        if self.path is not None and record.target_for("path") is None:
            raise ConfigError(f"backend {record.name!r} is a server: give a url ({_ways(record)}), not a path")
        if self.url is not None:
            if record.target_for("url") is None:
                raise ConfigError(f"backend {record.name!r} is embedded: give a store path, not a url")
            scheme = self.url.partition("://")[0].lower() if "://" in self.url else ""
            if scheme not in record.url_schemes:
                raise ConfigError(f"backend {record.name!r}: a server url starts with "
                                  f"{' or '.join(s + '://' for s in record.url_schemes)}, found {self.url!r}")
        if self.credential is not None:
            if record.credential is None:
                raise ConfigError(f"backend {record.name!r} takes no credential")
            if self.path is not None:
                raise ConfigError(f"{record.credential.argument} applies to a server url of backend {record.name!r}, "
                                  f"not to the embedded path={self.path!r}")
        _check_settings(record, self.settings, self.path)

    @classmethod
    def resolve(cls, backend: str = DEFAULT_ENGINE, url: str | None = None, path: str | None = None, *,
                env: Mapping[str, str] | None = None, **options: Any) -> "Connection":
        """The connection to ``backend`` with the environment's defaults filled in: without url and path,
        the engine's ``url_env`` else its default path; for a server url, its credential and settings
        from their variables unless given. ``options``: the engine's credential (e.g. ``api_key``,
        ``token``) and settings (e.g. ``timeout``) by their keyword; None means not given."""
        record = engine(backend)
        env = os.environ if env is None else env
        unknown = [name for name, value in options.items() if value is not None and name not in record.options()]
        if unknown:
            raise ConfigError(_not_an_option(record, unknown[0]))
        given = {k: v for k, v in options.items() if v is not None}
        credential = given.pop(record.credential.argument, None) if record.credential else None
        if url is None and path is None:
            url = (env.get(record.url_env) or None) if record.url_env else None
            path = record.default_path if url is None else None
        if url is not None:
            if credential is None and record.credential is not None:
                credential = env.get(record.credential.env) or None
            for setting in record.settings:
                raw = env.get(setting.env, "").strip()
                if setting.argument not in given and raw:
                    given[setting.argument] = _from_env(setting, raw)
        return cls(record.name, url, path, credential, given)

    @classmethod
    def parse(cls, location: str, *, backend: str | None = None, env: Mapping[str, str] | None = None,
              **options: Any) -> "Connection":
        """The connection a location string names (the grammar in the module doc), environment defaults
        filled in as by :meth:`resolve`; ``backend`` names the engine where the string does not."""
        if not isinstance(location, str) or not location.strip():
            raise ConfigError(f"a location must be a non-empty string such as {_grammar()}, found {location!r}")
        name, url, path = _split(location.strip(), backend)
        return cls.resolve(name, url, path, env=env, **options)

    @property
    def target(self) -> str:
        """The target this connection opens (:func:`smec_vdb.engines.target`), judged without opening it;
        a server may turn out to be a variant the engine tells apart only at connect."""
        chosen = engine(self.engine).target_for("url" if self.url is not None else "path")
        assert chosen is not None  # __post_init__ refused a url or path the engine does not take
        return chosen.name

    @property
    def location(self) -> str:
        """The url or path, credentials masked (for messages and reports)."""
        return mask_credentials(str(self.url if self.url is not None else self.path))

    def open(self) -> "Backend":
        """Connect: the engine's adapter called with ``path=`` or ``url=``, its credential and settings."""
        record = engine(self.engine)
        cls = adapter_class(record.name)
        if self.path is not None:
            return cls(path=self.path)
        secret = {record.credential.argument: self.credential} if record.credential and self.credential else {}
        return cls(url=self.url, **secret, **self.settings)

    def __repr__(self) -> str:
        where = f"url={self.location!r}" if self.url is not None else f"path={self.location!r}"
        settings = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        secret = ", credential=***" if self.credential else ""
        return f"Connection({self.engine!r}, {where}{secret}{settings})"


def _ways(record: Engine) -> str:
    """How a connection to ``record`` is given, e.g. "a url (http://host:19530; env MILVUS_URI) or a path (x.db)"."""
    ways = []
    for t in record.targets:
        if t.reported:
            continue
        if t.opened_by == "url":
            ways.append(f"a url ({t.summary}{'; env ' + record.url_env if record.url_env else ''})")
        else:
            ways.append(f"a path ({t.summary})")
    return " or ".join(ways)


def _not_an_option(record: Engine, option: str) -> str:
    owners = [e.name for e in engines().values() if option in e.options()]
    takes = ", ".join(record.options()) or "none"
    where = f"; {option!r} is among the options of backend {', '.join(map(repr, owners))}" if owners else ""
    return f"backend {record.name!r} takes no option {option!r} (its options: {takes}){where}"


def _check_settings(record: Engine, settings: Mapping[str, Any], path: str | None) -> None:
    """ConfigError for a setting the engine lacks, any setting on an embedded path, or a bad value."""
    by_name = {s.argument: s for s in record.settings}
    for name, value in settings.items():
        if name not in by_name:
            raise ConfigError(_not_an_option(record, name))
        if path is not None:
            raise ConfigError(f"{name} applies to a server url of backend {record.name!r}, not to the embedded "
                              f"path={path!r}")
        _check_value(by_name[name], value)


def _check_value(setting: Setting, value: Any) -> None:
    if setting.kind == "flag" and not isinstance(value, bool):
        raise ConfigError(f"{setting.argument} must be true or false, found {value!r}")
    if setting.kind == "seconds" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
        raise ConfigError(f"{setting.argument} must be a positive number of seconds, found {value!r}")


def _from_env(setting: Setting, raw: str) -> Any:
    if setting.kind == "flag":
        if raw.lower() not in ("0", "false", "no", "1", "true", "yes"):
            raise ConfigError(f"env {setting.env} must be true or false, found {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"env {setting.env} must be a number of seconds, found {raw!r}") from None


def _split(location: str, backend: str | None) -> tuple[str, str | None, str | None]:
    """(engine, url, path) of a location string (module doc), checked against ``backend`` if given."""
    shown = mask_credentials(location)
    if "://" not in location:
        if backend is None:
            raise ConfigError(f"{shown!r} names no engine: write it as {_grammar()}, or pass backend=")
        return engine(backend).name, None, location
    scheme, _, rest = location.partition("://")
    scheme = scheme.lower()
    if rest.strip("/") == "":
        raise ConfigError(f"{shown!r} names no path and no host: write it as {_grammar()}")
    name, _, transport = scheme.partition("+")
    known = engines()
    if name in known:
        record = known[name]
        found: tuple[str, str | None, str | None]
        if transport:
            if transport not in record.url_schemes:
                raise ConfigError(f"backend {name!r} reaches a server over {', '.join(record.url_schemes)}, "
                                  f"not {transport!r} ({shown!r})")
            found = (name, f"{transport}://{rest}", None)
        elif rest.startswith("/"):  # <engine>:///path: nothing between // and the path's slash
            found = (name, None, rest[1:])
        elif record.target_for("url") is None:
            raise ConfigError(f"backend {name!r} is embedded: write {name}:///relative/path or "
                              f"{name}:////absolute/path, found {shown!r}")
        else:
            found = (name, f"{record.url_schemes[0]}://{rest}", None)
        if backend is not None and engine(backend).name != name:
            raise ConfigError(f"{shown!r} names backend {name!r}, but backend={backend!r} was given")
        return found
    if transport:
        raise ConfigError(f"unknown backend {name!r} in {shown!r}; known backends: {', '.join(known)}")
    takers = [e.name for e in known.values() if scheme in e.url_schemes and e.target_for("url") is not None]
    if backend is not None:
        return engine(backend).name, location, None
    if len(takers) == 1:
        return takers[0], location, None
    if takers:
        raise ConfigError(
            f"{shown!r} could be a server of backend {' or '.join(map(repr, takers))}: write "
            f"{' or '.join(f'{t}+{shown}' for t in takers[:2])}, or pass backend="
        )
    raise ConfigError(f"unknown scheme {scheme!r} in {shown!r}: write it as {_grammar()}")


def _grammar() -> str:
    forms = []
    for record in engines().values():
        if record.target_for("path") is not None:
            forms.append(f"{record.name}:///PATH")
        if record.target_for("url") is not None:
            forms.append(f"{record.name}://HOST:PORT")
    return ", ".join(forms)
