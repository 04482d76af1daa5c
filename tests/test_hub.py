"""Downloads, resume, checksums, mirrors, locks and the offline rules, against a local
HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from _httpserver import FileServer
from bigganctl import hub
from bigganctl.errors import ChecksumError, WeightsUnavailable
from bigganctl.registry import RemoteFile, get_spec

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)          # > 3 chunks, not chunk-aligned
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("BIGGANCTL_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    monkeypatch.setattr(hub, "CONNECT_TIMEOUT", 5.0)


@pytest.fixture
def server(online):
    with FileServer() as srv:
        srv.state.files["/w.bin"] = PAYLOAD
        yield srv


@pytest.fixture
def no_sockets(monkeypatch):
    """Fail the test if anything opens a socket or resolves a name."""
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise AssertionError("a socket was opened in offline mode")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return opened


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_full_download_then_cache_hit(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), size=len(PAYLOAD), sha256=SHA)
    path = hub.ensure_file(rf, "models/test", progress=False)
    assert path == hub.home() / "models" / "test" / "w.bin"
    assert path.read_bytes() == PAYLOAD
    assert len(server.state.requests) == 1 and server.state.requests[0]["range"] is None
    # Only the file and its remembered sha256 remain: no .part, no lock file.
    assert _visible(path.parent) == [".w.bin.sha256", "w.bin"]
    assert hub.cached_sha256(path, compute=False) == SHA
    # Second call: served from the cache, no request.
    assert hub.ensure_file(rf, "models/test", progress=False) == path
    assert len(server.state.requests) == 1


def test_interrupted_transfer_resumes_with_range(server):
    server.state.cut_after = 1_000_000                   # first response dies mid-way
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), size=len(PAYLOAD), sha256=SHA)
    path = hub.ensure_file(rf, "models/test", progress=False)
    assert path.read_bytes() == PAYLOAD
    ranges = [r["range"] for r in server.state.requests]
    assert ranges[0] is None
    assert ranges[1] == "bytes=1000000-"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA


def test_part_file_from_an_earlier_run_is_resumed(server):
    folder = hub.home() / "models" / "test"
    folder.mkdir(parents=True)
    (folder / ".w.bin.part").write_bytes(PAYLOAD[:2_500_000])
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)     # size unknown
    path = hub.ensure_file(rf, "models/test", progress=False)
    assert [r["range"] for r in server.state.requests] == ["bytes=2500000-"]
    assert hub.sha256_matches(hub.cached_sha256(path), SHA) and path.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(server):
    server.state.honour_range = False
    folder = hub.home() / "models" / "test"
    folder.mkdir(parents=True)
    (folder / ".w.bin.part").write_bytes(b"garbage-prefix")
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_is_rejected_and_nothing_is_cached(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert _visible(hub.home() / "models" / "test") == []


def test_size_mismatch_is_rejected(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), size=len(PAYLOAD) + 1)
    with pytest.raises(ChecksumError, match="size"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert _visible(hub.home() / "models" / "test") == []


def test_sha256_prefix_is_accepted_like_torch_hub_names(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA[:8])
    assert hub.ensure_file(rf, "inception", progress=False).read_bytes() == PAYLOAD
    bad = RemoteFile("v.bin", (server.url("/w.bin"),), sha256="deadbeef")
    with pytest.raises(ChecksumError):
        hub.ensure_file(bad, "inception", progress=False)


def test_mirrors_are_tried_in_order(server):
    rf = RemoteFile("w.bin", (server.url("/missing.bin"), server.url("/w.bin")), sha256=SHA)
    assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == PAYLOAD
    assert [r["path"] for r in server.state.requests] == ["/missing.bin", "/w.bin"]


def test_transient_errors_are_retried(server):
    server.state.fail_with = [503, 502]
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == PAYLOAD
    assert len(server.state.requests) == 3


def test_persistent_failure_names_the_pull_command(server):
    server.state.fail_with = [503] * hub.RETRIES
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    with pytest.raises(WeightsUnavailable, match="bigganctl models pull test"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert len(server.state.requests) == hub.RETRIES


def test_unreachable_network_fails_fast(online):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                             # nothing listens there now
    rf = RemoteFile("w.bin", (f"http://127.0.0.1:{port}/w.bin",))
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable) as e:
        hub.ensure_file(rf, "models/biggan-deep-128", progress=False)
    assert time.monotonic() - t0 < 3
    msg = str(e.value)
    assert "network is unreachable" in msg
    assert "bigganctl models pull biggan-deep-128" in msg and "--weights PATH" in msg


def test_archive_member_is_extracted(server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("138k/G_ema.pth", PAYLOAD)
        zf.writestr("138k/other.pth", b"x")
    server.state.files["/bundle.zip"] = buf.getvalue()
    rf = RemoteFile("G_ema.pth", (server.url("/bundle.zip"),), sha256=SHA, member="138k/G_ema.pth")
    path = hub.ensure_file(rf, "models/biggan-128", progress=False)
    assert path.read_bytes() == PAYLOAD
    assert _visible(path.parent) == [".G_ema.pth.sha256", "G_ema.pth"]   # archive removed


def test_concurrent_downloads_of_one_file_download_once(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    results, errors = [], []

    def worker():
        try:
            results.append(hub.ensure_file(rf, "models/test", progress=False))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert len(server.state.requests) == 1


def test_corrupt_cached_file_is_fetched_again_when_online(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    path = hub.ensure_file(rf, "models/test", progress=False)
    path.write_bytes(b"corrupted")
    assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == PAYLOAD
    assert len(server.state.requests) == 2


# ---------------------------------------------------------------------------------------
# Offline

@pytest.mark.parametrize("var", ["BIGGANCTL_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_never_opens_a_socket(monkeypatch, no_sockets, var):
    monkeypatch.delenv("BIGGANCTL_OFFLINE", raising=False)
    monkeypatch.setenv(var, "1")
    rf = RemoteFile("pytorch_model.bin", ("http://127.0.0.1:9/never",))
    with pytest.raises(WeightsUnavailable) as e:
        hub.ensure_file(rf, "models/biggan-deep-256", progress=False)
    msg = str(e.value)
    assert "offline" in msg
    assert "bigganctl models pull biggan-deep-256" in msg
    assert "BIGGANCTL_HOME" in msg and "--weights PATH" in msg
    assert no_sockets == []


def test_offline_serves_cached_files(no_sockets):
    folder = hub.home() / "models" / "test"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("w.bin", ("http://127.0.0.1:9/never",), size=len(PAYLOAD), sha256=SHA)
    assert hub.ensure_file(rf, "models/test", progress=False) == folder / "w.bin"
    assert no_sockets == []


def test_offline_corrupt_cache_raises_checksum_error(no_sockets):
    folder = hub.home() / "models" / "test"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"bad")
    rf = RemoteFile("w.bin", ("http://127.0.0.1:9/never",), sha256=SHA)
    with pytest.raises(ChecksumError):
        hub.ensure_file(rf, "models/test", progress=False)


def test_manual_download_specs_explain_themselves(online):
    spec = get_spec("biggan-128")
    with pytest.raises(WeightsUnavailable) as e:
        hub.ensure_spec(spec, progress=False)
    msg = str(e.value)
    assert "no public download URL" in msg and "--weights PATH" in msg and "Google Drive" in msg


# ---------------------------------------------------------------------------------------
# Status and verification

def test_cache_status_and_verify(server, monkeypatch):
    spec = get_spec("biggan-deep-128")
    status = hub.cache_status(spec)
    assert status["state"] == "missing" and [f["present"] for f in status["files"]] == [False, False]
    folder = hub.spec_dir(spec)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(spec.config.to_hf_json())
    assert hub.cache_status(spec)["state"] == "partial"
    (folder / "pytorch_model.bin").write_bytes(PAYLOAD)
    status = hub.cache_status(spec)
    assert status["state"] == "cached"
    assert status["files"][1]["size"] == len(PAYLOAD) and status["files"][1]["verified"] is None
    rows = {r["filename"]: r for r in hub.verify(spec)}
    assert rows["pytorch_model.bin"]["sha256"] == SHA
    assert rows["pytorch_model.bin"]["status"] == "unknown"     # 128 has no published sha256
    spec256 = get_spec("biggan-deep-256")
    hub.spec_dir(spec256).mkdir(parents=True)
    (hub.spec_dir(spec256) / "pytorch_model.bin").write_bytes(PAYLOAD)
    rows = {r["filename"]: r for r in hub.verify(spec256)}
    assert rows["pytorch_model.bin"]["status"] == "mismatch"
    assert rows["config.json"]["status"] == "missing"
    assert hub.cache_status(spec256)["files"][1]["verified"] is False


def test_inception_asset_is_registered():
    asset = hub.ASSETS["inception"]
    rf = asset.files[0]
    assert rf.filename == "weights-inception-2015-12-05-6726825d.pth"
    import importlib.util

    # The URL torch-fidelity itself downloads from (read from its source, no import).
    src = Path(importlib.util.find_spec("torch_fidelity").origin).with_name(
        "feature_extractor_inceptionv3.py").read_text()
    assert f'"{rf.urls[0]}"' in src
    assert rf.sha256 == "6726825d"
    assert hub.cache_status(asset)["dir"] == str(hub.home() / "inception")
