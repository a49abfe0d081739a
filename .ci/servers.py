"""Start and stop the Milvus servers the server-marked suites run against (issue 11).

    python .ci/servers.py start [--state DIR]   # prints the `export ...` lines for the test run
    python .ci/servers.py stop  [--state DIR]   # stops what `start` started, by PID

Two servers, both on loopback ports picked free at start:

- ``milvus-server``: the real Milvus 2.3.5 standalone server of PyPI ``milvus==2.3.5``
  (``milvus-server --data DIR``), exported as ``MILVUS_URI``. Its Python wrapper silently moves to
  the next free port when one is taken, so the port is read back from ``DIR/configs/milvus.yaml``
  (``proxy.port``) and the health port from the child's ``METRICS_PORT``; health is ``/healthz``.
  Every port it takes is given explicitly, its embedded etcd's too (``ETCD_CONFIG_PATH``), so that
  it never clashes with another Milvus on the machine (its gRPC/HTTP ports bind all interfaces).
- ``milvus-lite-server``: Milvus Lite over TCP (``milvus-lite server --data-dir D --host 127.0.0.1
  --port N``), exported as ``MILVUS_LITE_URI``; healthy once it answers ``get_server_version``.

Which servers start, and the variable each is exported as, are the engine registry's
(``smec_vdb.engines``: targets marked ``ci_server``, their ``test_url_env``); :data:`STARTERS` says how.
Each server's PID (and the 2.3.5 wrapper's child ``milvus`` PID) goes to a file under the state
directory. ``stop`` sends SIGINT (the 2.3.5 wrapper then ends its child; Milvus Lite shuts down
gracefully), waits, escalates to SIGTERM and SIGKILL, and checks that no recorded process survives.
Processes are psutil's (children, environment, waiting with a timeout, and no signal to a PID the
system has since given to another process); what stays hand-written is what no library knows:
the ports, the health checks and the order of start-up. pymilvus does the gRPC health check.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE = ROOT / ".ci" / ".servers"
START_TIMEOUT_S = 180.0  # the 2.3.5 server is up in < 45 s on an idle machine; CI machines are shared
STOP_TIMEOUT_S = 10.0  # per signal: SIGINT, then SIGTERM, then SIGKILL
LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A server did not become healthy; the message carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def grpc_healthy(uri: str) -> bool:
    try:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, timeout=5)
        try:
            client.get_server_version()
        finally:
            client.close()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def http_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return "OK" in resp.read().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - not up yet
        return False


def wait_until(check, pid: int, name: str, logs: list[Path], timeout: float = START_TIMEOUT_S):
    """Poll ``check()`` until it returns a truthy value; ServerStartError with the log tails on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        value = check()
        if value:
            return value
        time.sleep(0.5)
    why = "exited" if not alive(pid) else f"was not healthy after {timeout:.0f} s"
    tails = "\n".join(f"--- {log} ---\n{log_tail(log)}" for log in logs)
    raise ServerStartError(f"{name} (pid {pid}) {why}; log tail:\n{tails}")


def spawn(cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, start_new_session=True)


def proxy_port(config: str) -> int | None:
    """``proxy.port`` of a milvus.yaml: the first ``port:`` one level under the top-level ``proxy:`` key."""
    section = re.search(r"^proxy:[^\n]*\n(.*?)(?=^\S|\Z)", config, re.M | re.S)
    port = re.search(r"^  port:\s*(\d+)", section.group(1), re.M) if section else None
    return int(port.group(1)) if port else None


#: the 2.3.5 wrapper's port options: each gets a free port, so that a second server on the machine cannot clash
MILVUS_PORT_OPTIONS = ("--proxy-port", "--proxy-internal-port", "--root-coord-port", "--query-coord-port",
                       "--query-node-port", "--index-coord-port", "--index-node-port", "--data-coord-port",
                       "--data-node-port")


def embedded_etcd_config(client_port: int, peer_port: int) -> str:
    """An embedded-etcd config on loopback ports: without one, etcd listens on 2379/2380 whatever the
    wrapper's ``--etcd-port`` says, and a second server on the machine hangs at start."""
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return (f"listen-client-urls: {client}\nadvertise-client-urls: {client}\nlisten-peer-urls: {peer}\n"
            f"initial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n")


def start_milvus_server(state: Path) -> str:
    """The 2.3.5 standalone server; returns its URI."""
    data = state / "milvus-server"
    log = state / "milvus-server.log"
    etcd_client, etcd_peer = free_port(), free_port()
    etcd_config = state / "embed-etcd.yaml"
    etcd_config.write_text(embedded_etcd_config(etcd_client, etcd_peer))
    ports = [arg for option in MILVUS_PORT_OPTIONS for arg in (option, str(free_port()))]
    env = {**os.environ, "ETCD_CONFIG_PATH": str(etcd_config)}  # Milvus reads its settings from env vars too
    proc = spawn([sys.executable, "-c", "import milvus; milvus.main()", "--data", str(data),
                  "--etcd-port", str(etcd_client), *ports], log, state, env)
    (state / "milvus-server.pid").write_text(str(proc.pid))
    logs = [log, data / "logs" / "milvus-stderr.log"]

    def child_ports() -> tuple[int, int, int] | None:
        config = data / "configs" / "milvus.yaml"
        try:
            kids = psutil.Process(proc.pid).children()
            metrics = kids[0].environ().get("METRICS_PORT") if kids else None
        except psutil.NoSuchProcess:
            return None
        if not kids or not config.exists():
            return None
        proxy = proxy_port(config.read_text())
        return (kids[0].pid, proxy, int(metrics)) if proxy and metrics else None

    child, port, metrics = wait_until(child_ports, proc.pid, "milvus-server", logs)
    (state / "milvus-server.child.pid").write_text(str(child))
    wait_until(lambda: http_healthy(metrics), proc.pid, "milvus-server", logs)
    uri = f"http://127.0.0.1:{port}"
    wait_until(lambda: grpc_healthy(uri), proc.pid, "milvus-server", logs)
    return uri


def start_milvus_lite_server(state: Path) -> str:
    """Milvus Lite over TCP; returns its URI."""
    port = free_port()
    log = state / "milvus-lite-server.log"
    proc = spawn([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(state / "milvus-lite-server"),
                  "--host", "127.0.0.1", "--port", str(port)], log, state)
    (state / "milvus-lite-server.pid").write_text(str(proc.pid))
    uri = f"http://127.0.0.1:{port}"
    wait_until(lambda: grpc_healthy(uri), proc.pid, "milvus-lite-server", [log])
    return uri


#: how each server target the engine registry marks ``ci_server`` is started here (name -> starter)
STARTERS = {"milvus-server": start_milvus_server, "milvus-lite-server": start_milvus_lite_server}


def ci_servers() -> list:
    """The registry's targets that CI starts (:attr:`smec_vdb.engines.Target.ci_server`), each with a starter."""
    from smec_vdb import engines

    wanted = [t for t in engines.targets().values() if t.ci_server]
    missing = [t.name for t in wanted if t.name not in STARTERS or not t.test_url_env]
    if missing:
        raise SystemExit(f"no starter (or no url variable) for the CI server target(s) {', '.join(missing)}: "
                         "add one to STARTERS in .ci/servers.py")
    return wanted


def start(state: Path) -> None:
    if any(state.glob("*.pid")):
        raise SystemExit(f"servers already started from {state}: run `python .ci/servers.py stop` first")
    servers = ci_servers()
    for server in servers:  # data of an earlier run: start empty
        shutil.rmtree(state / server.name, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        uris = {server.test_url_env: STARTERS[server.name](state) for server in servers}
    except BaseException:
        stop(state)
        raise
    print(f"servers healthy after {time.monotonic() - t0:.1f} s (state in {state})", file=sys.stderr)
    for name, uri in uris.items():
        print(f"export {name}={uri}")


def stop(state: Path) -> None:
    """SIGINT every recorded server, then SIGTERM, then SIGKILL what is left, and fail if anything survives.

    After the full test run one server process outlived SIGINT by 30 s (seen in CI), so each signal
    gets :data:`STOP_TIMEOUT_S` before the next, harder one. The 2.3.5 wrapper's child gets only the
    SIGKILL: the wrapper ends it on the gentler signals."""
    pid_files = sorted(state.glob("*.pid"))
    remaining: list[psutil.Process] = []
    leaders: list[psutil.Process] = []
    for f in pid_files:
        try:
            process = psutil.Process(int(f.read_text()))
        except psutil.NoSuchProcess:
            continue
        remaining.append(process)
        if not f.name.endswith(".child.pid"):
            leaders.append(process)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        for process in remaining:
            if sig == signal.SIGKILL or process in leaders:
                if sig != signal.SIGINT:
                    print(f"pid {process.pid} still running {STOP_TIMEOUT_S:.0f} s after the last signal: {sig.name}",
                          file=sys.stderr)
                try:
                    process.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
        remaining = [p for p in psutil.wait_procs(remaining, timeout=STOP_TIMEOUT_S)[1] if alive(p.pid)]
        if not remaining:
            break
    if remaining:
        raise SystemExit(f"processes still running after stop: {[p.pid for p in remaining]}")
    for f in pid_files:
        f.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"pid files, logs, data (default {DEFAULT_STATE})")
    args = parser.parse_args()
    try:
        (start if args.action == "start" else stop)(args.state.resolve())
    except ServerStartError as e:
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
