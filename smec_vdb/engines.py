"""The registry of vector engines: one :class:`Engine` record per engine, read by every caller.

A record says everything the rest of smec-vdb needs to know about an engine without importing its
client: the adapter class (``module:Class``, imported only when a connection is opened), how a
connection is given (a ``path`` for an embedded store, a ``url`` for a server, its URL schemes,
environment variables for the url, credential and settings), the *targets* it yields (one per way
of running it, told apart without connecting), what it can do (:class:`Capabilities`), the extra to
install, and the entries the test suites and CI use (a store name, a server URL variable, whether
``.ci/servers.py`` starts it). :func:`smec_vdb.adapters.open_backend`, :func:`smec_vdb.connect`,
the CLI's options, ``migrate`` (single-process and distributed), :mod:`smec_vdb.layout` and the
test suites' target lists all read it: code asks the record (``engine("milvus").caps.partitions``),
never the engine's name.

The built-in engines are registered below. Others register in-process with :func:`register`, or
from an installed package through the entry-point group :data:`ENTRY_POINT_GROUP`, whose entries
name an :class:`Engine` (loaded on the first look-up, or by :func:`load_entry_points`)::

    # pyproject.toml of a package "smec-vdb-toy"
    [project.entry-points."smec_vdb.engines"]
    toy = "smec_vdb_toy:ENGINE"

An adapter class is called as ``Adapter(path=...)`` for a path target and as
``Adapter(url=..., <credential>=..., **settings)`` for a url target, and implements
:class:`smec_vdb.backend.Backend`. An unknown engine or target name is a
:class:`~smec_vdb.errors.ConfigError` listing the known ones.

Example::

    from smec_vdb.engines import engine, engines, target
    sorted(engines())                        # ['milvus', 'qdrant', 'qdrant-edge']
    engine("milvus").caps.partitions         # True
    target("qdrant-local").embedded          # True: one writer process per store
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal

from smec_vdb.errors import ConfigError, MissingDependencyError

#: the entry-point group through which installed packages register engines (each entry: an Engine)
ENTRY_POINT_GROUP = "smec_vdb.engines"
DEFAULT_ENGINE = "qdrant-edge"
#: where the embedded default engine keeps its store when no path is given
DEFAULT_STORE = "./smec_data"
ALL_QUANTIZATIONS = frozenset({"none", "int8", "binary", "turbo"})


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, known without connecting. A connected server may allow less, which its
    adapter reads at connect (e.g. Milvus < 2.4 holds one vector field per collection)."""

    #: ``create_alias`` / ``resolve_alias`` / ``delete_alias``
    aliases: bool = True
    #: several dense vector fields per collection (multi-resolution collections)
    multi_vector: bool = True
    #: partitions inside a collection (Milvus)
    partitions: bool = False
    #: payload (scalar) indexes declared with a collection
    payload_indexes: bool = True
    #: typed scalar columns (Milvus): a migration keeps a source's columns and lays a schemaless payload out
    #: as columns where every point agrees on a type (else payloads are schemaless, as in Qdrant)
    columns: bool = False
    #: filters that match booleans
    bool_filters: bool = True
    #: quantized codes its index can search (:class:`smec_vdb.layout.Quantization` kinds)
    quantizations: frozenset[str] = ALL_QUANTIZATIONS
    #: codes only inside an HNSW graph (no codes on a flat index or a graph-less resolution)
    quantize_needs_graph: bool = False


@dataclass(frozen=True)
class Target:
    """One way to run an engine (``Backend.target``), told apart without connecting by how it is given:
    a ``path`` (embedded: in-process, one writer process per store) or a ``url`` (a server)."""

    name: str
    opened_by: Literal["path", "url"]
    #: what the path or url is, for help texts and errors ("a Milvus Lite file such as x.db")
    summary: str
    #: a url target that only the connected server tells apart from the engine's first url target
    #: (Milvus Lite over TCP reports no release number): never chosen without connecting
    reported: bool = False
    #: test suites: the store's name under a temporary directory (embedded targets)
    test_store: str | None = None
    #: test suites and CI: the environment variable holding the server's url (server targets)
    test_url_env: str | None = None
    #: ``.ci/servers.py start`` starts this server for the CI run
    ci_server: bool = False
    #: the engine it belongs to (set by :func:`register`)
    engine: str = ""

    @property
    def embedded(self) -> bool:
        """In-process over a local store: one writer process per store (no distributed workers)."""
        return self.opened_by == "path"


@dataclass(frozen=True)
class Credential:
    """The secret a server connection takes: the adapter's keyword ``argument``, read from env ``env``."""

    argument: str
    env: str


@dataclass(frozen=True)
class Setting:
    """A server connection option: the adapter's keyword ``argument``, read from env ``env`` when not
    given; ``kind`` ``seconds`` (a positive number) or ``flag`` (true/false)."""

    argument: str
    env: str
    kind: Literal["seconds", "flag"]


@dataclass(frozen=True)
class Engine:
    """One engine: what ``--backend`` names, its adapter and how it is connected to, installed and tested."""

    name: str
    #: the adapter class, ``module:Class`` (imported only when a connection is opened)
    adapter: str
    summary: str
    targets: tuple[Target, ...]
    #: client modules the adapter imports (checked before it is, for the install hint)
    client_modules: tuple[str, ...] = ()
    install_hint: str = ""
    caps: Capabilities = Capabilities()
    #: URL schemes of a server url; the first is the one ``<engine>://host:port`` means
    url_schemes: tuple[str, ...] = ("http", "https")
    #: env variable giving the server url when neither url nor path is given
    url_env: str | None = None
    #: the path used when neither url nor path is given (and no ``url_env`` is set)
    default_path: str | None = None
    #: a path that names an in-memory store (qdrant-client's ``:memory:``), never a directory
    in_memory: str | None = None
    credential: Credential | None = None
    settings: tuple[Setting, ...] = ()

    def target_for(self, opened_by: Literal["path", "url"]) -> Target | None:
        """The target a connection given by a path or a url opens, judged without connecting."""
        return next((t for t in self.targets if t.opened_by == opened_by and not t.reported), None)

    def options(self) -> tuple[str, ...]:
        """Keyword options a connection to this engine takes: its credential, then its settings."""
        return (*([self.credential.argument] if self.credential else []), *(s.argument for s in self.settings))


def _extra(name: str) -> str:
    return f"pip install 'smec-vdb[{name}]'"


_BUILTIN = (
    Engine(
        "qdrant-edge", "smec_vdb.adapters.qdrant_edge:QdrantEdgeBackend",
        "Qdrant's Rust engine in-process (the embedded default)",
        (Target("qdrant-edge", "path", "a store directory", test_store="qdrant-edge"),),
        client_modules=("qdrant_edge",), install_hint=_extra("qdrant"),
        caps=Capabilities(bool_filters=False),  # qdrant-edge-py 0.9 reads a boolean match as 1/0
        default_path=DEFAULT_STORE,
    ),
    Engine(
        "qdrant", "smec_vdb.adapters.qdrant:QdrantBackend", "a Qdrant server, or qdrant-client's embedded local mode",
        (Target("qdrant-local", "path", "a directory, or :memory:", test_store="qdrant-local"),
         Target("qdrant-server", "url", "http://host:6333", test_url_env="QDRANT_URL")),
        client_modules=("qdrant_client",), install_hint=_extra("qdrant"),
        url_env="QDRANT_URL", in_memory=":memory:", credential=Credential("api_key", "QDRANT_API_KEY"),
        settings=(Setting("timeout", "QDRANT_TIMEOUT", "seconds"), Setting("prefer_grpc", "QDRANT_PREFER_GRPC", "flag")),
    ),
    Engine(
        "milvus", "smec_vdb.adapters.milvus:MilvusBackend", "a Milvus server (multi-resolution needs >= 2.4), or Milvus Lite",
        (Target("milvus-lite", "path", "a Milvus Lite file such as x.db", test_store="milvus-lite.db"),
         # in CI the Milvus 2.3.5 standalone server of PyPI ``milvus`` (one vector field per collection)
         Target("milvus-server", "url", "http://host:19530", test_url_env="MILVUS_URI", ci_server=True),
         # Milvus Lite served over TCP (``milvus-lite server``): the adapter's network path, current engine
         Target("milvus-lite-server", "url", "http://host:19530", reported=True, test_url_env="MILVUS_LITE_URI",
                ci_server=True)),
        client_modules=("pymilvus", "milvus_lite"), install_hint=_extra("milvus"),
        caps=Capabilities(partitions=True, columns=True, quantizations=frozenset({"none", "int8"}),
                          quantize_needs_graph=True),
        url_schemes=("http", "https", "tcp"), url_env="MILVUS_URI", credential=Credential("token", "MILVUS_TOKEN"),
    ),
)

_ENGINES: dict[str, Engine] = {}
_TARGETS: dict[str, Target] = {}
#: entry points that failed to load: engine name -> why (reported when that engine is asked for)
_BROKEN: dict[str, str] = {}
_entry_points_loaded = False


def register(record: Engine, *, replace_existing: bool = False) -> Engine:
    """Add ``record`` to the registry (in-process plug-ins; installed packages use :data:`ENTRY_POINT_GROUP`).

    ConfigError when its name or one of its target names is taken (unless ``replace_existing``), when
    it has no target, or when a target is not opened by ``path`` or ``url``. Returns the stored record
    (its targets carry the engine's name).
    """
    if not record.name or not record.targets:
        raise ConfigError(f"an engine needs a name and at least one target, found {record.name!r} with {record.targets!r}")
    if ":" not in record.adapter:
        raise ConfigError(f"engine {record.name!r}: adapter must be 'module:Class', found {record.adapter!r}")
    bound = replace(record, targets=tuple(replace(t, engine=record.name) for t in record.targets))
    previous = _ENGINES.get(record.name)
    if previous is not None and not replace_existing:
        raise ConfigError(f"engine {record.name!r} is registered already (pass replace_existing=True to replace it)")
    for t in bound.targets:
        if t.opened_by not in ("path", "url"):
            raise ConfigError(f"target {t.name!r}: opened_by must be 'path' or 'url', found {t.opened_by!r}")
        owner = _TARGETS.get(t.name)
        if owner is not None and owner.engine != record.name:
            raise ConfigError(f"target {t.name!r} belongs to engine {owner.engine!r} already")
    if previous is not None:
        unregister(record.name)
    _ENGINES[bound.name] = bound
    _TARGETS.update((t.name, t) for t in bound.targets)
    _BROKEN.pop(bound.name, None)
    return bound


def unregister(name: str) -> None:
    """Remove engine ``name`` and its targets (a no-op if it is not registered)."""
    record = _ENGINES.pop(name, None)
    for t in record.targets if record else ():
        _TARGETS.pop(t.name, None)


def load_entry_points() -> list[str]:
    """Register the engines of installed packages (:data:`ENTRY_POINT_GROUP`) not registered yet; their names.

    A broken entry point is skipped with a warning; asking for its engine later is a ConfigError saying why.
    """
    global _entry_points_loaded
    _entry_points_loaded = True
    added = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _ENGINES:
            continue
        try:
            record = entry.load()
            if not isinstance(record, Engine):
                raise TypeError(f"expected a smec_vdb.engines.Engine, found {type(record).__name__}")
            if record.name != entry.name:
                raise ValueError(f"the entry point is named {entry.name!r} but its engine {record.name!r}")
            register(record)
        except Exception as e:  # noqa: BLE001 - one broken plug-in must not break every engine
            why = f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) failed to load: {type(e).__name__}: {e}"
            _BROKEN[entry.name] = why
            warnings.warn(why, stacklevel=2)
            continue
        added.append(entry.name)
    return added


def engines() -> dict[str, Engine]:
    """Every registered engine by name (entry points loaded on the first call)."""
    if not _entry_points_loaded:
        load_entry_points()
    return dict(_ENGINES)


def targets() -> dict[str, Target]:
    """Every registered target by name."""
    engines()
    return dict(_TARGETS)


def target_names(*, embedded: bool | None = None) -> tuple[str, ...]:
    """Registered target names, embedded ones or servers only when ``embedded`` says so."""
    return tuple(n for n, t in targets().items() if embedded is None or t.embedded == embedded)


def engine(name: str) -> Engine:
    """The registered engine called ``name``; ConfigError listing the known ones otherwise."""
    known = engines()
    if isinstance(name, str) and name in known:
        return known[name]
    if name in _BROKEN:
        raise ConfigError(f"backend {name!r} is not available: {_BROKEN[name]}")
    raise ConfigError(f"unknown backend {name!r}; known backends: {', '.join(known)}")


def target(name: str) -> Target:
    """The registered target called ``name``; ConfigError listing the known ones otherwise."""
    known = targets()
    if isinstance(name, str) and name in known:
        return known[name]
    raise ConfigError(f"unknown target {name!r}; known targets: {', '.join(known)}")


def capabilities(target_name: str) -> Capabilities:
    """What the engine of target ``target_name`` can do (:class:`Capabilities`)."""
    return engine(target(target_name).engine).caps


def missing_clients(name: str) -> list[str]:
    """The client modules of engine ``name`` that are not installed (without importing any)."""
    return [module for module in engine(name).client_modules if importlib.util.find_spec(module) is None]


def adapter_class(name: str) -> Any:
    """The adapter class of engine ``name``, imported now; MissingDependencyError if its client is absent."""
    spec = engine(name)
    missing = missing_clients(name)
    if missing:
        raise MissingDependencyError(
            f"backend {name!r} needs the Python package(s) {', '.join(missing)}, which are not installed: "
            f"{spec.install_hint}"
        )
    module, _, cls = spec.adapter.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"backend {name!r}: cannot import its adapter {spec.adapter!r}: {e}") from e


for _record in _BUILTIN:
    register(_record)
