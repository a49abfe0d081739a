"""The package as installed: light core dependencies, a library without typer/rich, no import cycles, one engine registry."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smec_vdb import engines
from smec_vdb.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parent.parent
# repository folder -> the package it installs as
PACKAGES = {"smec_vdb": "smec_vdb", "adapters": "smec_vdb.adapters", "cli": "smec_vdb.cli"}
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)


def requirement_names(extra: str | None, seen: frozenset[str] = frozenset()) -> set[str]:
    """Distribution names that installing smec-vdb (with ``extra``) pulls in directly, self-references resolved."""
    names: set[str] = set()
    for line in importlib.metadata.requires("smec-vdb") or []:
        requirement, _, marker = line.partition(";")
        wanted = re.search(r'extra == "([^"]+)"', marker)
        if (wanted.group(1) if wanted else None) != extra:
            continue
        name = re.match(r"[A-Za-z0-9_.-]+", requirement.strip()).group(0).lower()
        if name == "smec-vdb":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                if inner not in seen:
                    names |= requirement_names(inner.strip(), seen | {extra or ""})
        else:
            names.add(name)
    return names | (requirement_names(None) if extra is not None and not seen else set())


def test_core_and_extras_pull_only_what_they_name():
    core = requirement_names(None)
    assert core == {"torch", "numpy", "safetensors", "tqdm", "tenacity"}
    qdrant = requirement_names("qdrant")
    assert {"qdrant-client", "qdrant-edge-py"} <= qdrant and not {"pymilvus", "milvus-lite"} & qdrant
    assert not {"typer", "rich"} & qdrant
    assert {"pymilvus", "milvus-lite"} <= requirement_names("milvus")  # the same check sees Milvus where it is
    assert {"qdrant-client", "pymilvus", "typer", "rich"} <= requirement_names("all")


def test_core_dependencies_are_ranges_and_constraints_pin_them_exactly():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    assert pins["torch"] == "2.13.0"  # the local CPU build; a bare range would pull CUDA wheels
    for line in importlib.metadata.requires("smec-vdb") or []:
        assert "==" not in line.partition(";")[0], f"exact pin in pyproject: {line} (it belongs in constraints.txt)"
        name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
        assert name == "smec-vdb" or name in pins, f"{name} has no exact pin in constraints.txt"


def test_the_library_imports_without_typer_or_rich():
    modules = [name for name in library_modules() if not name.startswith("smec_vdb.cli")]
    code = BLOCK.format(blocked=["typer", "rich"]) + f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    proc = run_python(BLOCK.format(blocked=["typer", "rich"]) + "import smec_vdb.cli.search")  # the check can fail
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr


def test_the_console_script_without_the_cli_extra_says_what_to_install():
    proc = run_python(BLOCK.format(blocked=["typer"]) + "import sys; sys.argv = ['smec-vdb', '--help']\n"
                      "from smec_vdb.cli import main; main()")
    assert proc.returncode == 1 and proc.stderr.strip() == "error: the smec-vdb command line needs typer: pip install 'smec-vdb[cli]'"


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"], ["inspect", "--json"]])
def test_help_and_inspect_start_without_torch(argv, tmp_path):
    (tmp_path / "store").mkdir()
    code = (f"import sys; sys.argv = ['smec-vdb', *{argv!r}, *(['--path', {str(tmp_path / 'store')!r}] if 'inspect' in {argv!r} else [])]\n"
            "from smec_vdb.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("no torch")


def library_modules() -> list[str]:
    names = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            names.append(".".join([package, *parts]))
    return names


def module_level_imports(path: Path, module: str) -> set[str]:
    """smec_vdb modules imported at import time (not inside functions or ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("smec_vdb"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("smec_vdb")}
    return found


def import_graph() -> dict[str, set[str]]:
    known = set(library_modules())
    graph = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            module = ".".join([package, *[p for p in rel.parts if p != "__init__"]])
            graph[module] = {m for m in module_level_imports(path, module) if m in known and m != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    # a package importing its own submodules (smec_vdb.compress -> smec_vdb.compress.base) is not a cycle
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in import_graph().items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check can fail


def test_every_registered_engine_loads_its_adapter_and_targets_name_engines():
    for name in engines.engines():
        assert engines.adapter_class(name).__module__.startswith("smec_vdb.adapters.")
    assert {t.engine for t in engines.targets().values()} == set(engines.engines())
    assert engines.target_names(embedded=True) == ("qdrant-edge", "qdrant-local", "milvus-lite")


def test_a_missing_engine_client_is_a_typed_error_with_the_install_line():
    milvus = engines.engine("milvus")
    engines.register(dataclasses.replace(milvus, client_modules=("no_such_client_module_xyz",)), replace_existing=True)
    try:
        from smec_vdb.adapters import open_backend

        with pytest.raises(MissingDependencyError, match=r"pip install 'smec-vdb\[milvus\]'"):
            open_backend("milvus", path="x.db")
    finally:
        engines.register(milvus, replace_existing=True)


def test_metadata_is_single_sourced_and_typed():
    import smec_vdb

    assert importlib.metadata.version("smec-vdb") == smec_vdb.__version__
    assert (Path(smec_vdb.__file__).parent / "py.typed").is_file()
    meta = importlib.metadata.metadata("smec-vdb")
    assert "License :: OSI Approved :: Apache Software License" in meta.get_all("Classifier")
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
