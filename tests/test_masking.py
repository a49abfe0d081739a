"""Credentials never shown (issue 22, finding 7): URLs whose user or password holds ``@``, ``:`` or ``/``,
raw or percent-encoded, are masked in errors, CLI output, JSON reports, log records and reprs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from smec_vdb.errors import BackendError, mask_credentials, public_url
from smec_vdb.connection import Connection

#: (userinfo as written in the URL, the secrets that must not appear, raw or decoded)
CREDENTIALS = [
    ("root:RETpw@x", ["RETpw", "RETpw@x"]),                     # the finding: masked only up to the first @
    ("root:p@ss:w@rd", ["p@ss", "ss:w", "w@rd"]),
    ("root:pa/ss@word", ["pa/ss", "ss@word"]),                  # a raw / ends urlsplit's authority early
    ("root:pa%2Fss%40w%3Ard", ["pa%2Fss", "pa/ss@w:rd", "%40w"]),
    ("admin%40corp:S3cr:et/x@y", ["admin%40corp", "admin@corp", "S3cr", "et/x"]),
    (":tok3n@@", ["tok3n"]),
]


@pytest.mark.parametrize("userinfo, secrets", CREDENTIALS)
@pytest.mark.parametrize("scheme, host", [("http", "milvus.example:19530"), ("https", "10.0.0.7:6333/prefix")])
def test_masked_in_messages_and_reprs(userinfo, secrets, scheme, host):
    url = f"{scheme}://{userinfo}@{host}"
    texts = {
        "message": mask_credentials(f"cannot connect to {url}: refused"),
        "quoted": mask_credentials(f"url={url!r}, retrying"),
        "error": str(BackendError(f"qdrant ({url}): 503")),
        "repr": repr(Connection("milvus", url=url, credential="t0ken")),
        "public": public_url(url),
    }
    for where, text in texts.items():
        assert not any(s in text for s in secrets) and "t0ken" not in text, (where, text)
        assert host.split("/")[0] in text, (where, text)
    assert texts["message"] == f"cannot connect to {scheme}://***@{host}: refused"
    assert texts["public"] == f"{scheme}://{host}"


def test_urls_without_credentials_and_plain_text_are_unchanged():
    text = "see http://localhost:6333/collections and mail ops@example.com (path ./x@y)"
    assert mask_credentials(text) == text
    assert mask_credentials("https://h:6333/points?api_key=abc&limit=3") == "https://h:6333/points?api_key=***&limit=3"


def test_masked_in_cli_output(tmp_path):
    url = "http://root:pa/ss@w:rd@127.0.0.1:9"  # nothing listens on port 9
    env = {**os.environ, "SMEC_VDB_DEBUG": "0"}
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "inspect", "--backend", "qdrant", "--url", url],
                          capture_output=True, text=True, env=env, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "pa/ss" not in output and "w:rd" not in output, output
    assert "***@127.0.0.1:9" in output and len(proc.stderr.strip().splitlines()) == 1, output


def test_masked_in_json_reports(tmp_path):
    from smec_vdb.cli.migrate import _save

    report = {"verification": {"summary": "recall 0.1 on http://u:p@ss/w@h:19530"}, "target": {"backend": "milvus"}}
    _save(report, tmp_path / "report.json")
    text = (tmp_path / "report.json").read_text()
    assert "p@ss" not in text and "ss/w" not in text
    assert json.loads(text)["verification"]["summary"] == "recall 0.1 on http://***@h:19530"


@pytest.mark.parametrize("debug", [False, True])
def test_masked_in_log_records_and_their_tracebacks(capsys, debug):
    from smec_vdb.cli.app import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging(debug)
    try:
        log = logging.getLogger("smec_vdb.test")
        log.warning("connecting to %s", "http://root:p@ss/w@h:19530")
        try:
            raise RuntimeError("refused by http://root:p@ss/w@h:19530")
        except RuntimeError:
            log.error("engine failed", exc_info=True)
    finally:
        for handler in set(root.handlers) - set(before):
            root.removeHandler(handler)
    err = capsys.readouterr().err
    assert "p@ss" not in err and "ss/w" not in err and "http://***@h:19530" in err, err
    assert ("refused by http://***@h:19530" in err) == debug  # the one-line format drops tracebacks


def test_a_store_identity_has_no_credentials():
    from smec_vdb.compress.store import store_name

    class Store:
        target, location = "milvus-server", public_url("http://root:p@ss@Milvus:19530/")

    assert store_name(Store()) == "milvus-server http://milvus:19530"  # type: ignore[arg-type]
