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
from bigganctl.weights import hub
from bigganctl.errors import ChecksumError, WeightsUnavailable
from bigganctl.weights.registry import RemoteFile, get_spec

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
    spec = get_spec("biggan-deep-512")                       # no published size or sha256
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
    assert rows["pytorch_model.bin"]["status"] == "unknown"     # nothing pinned, nothing recorded
    assert rows["pytorch_model.bin"]["checksum"] == "unknown"
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


# ---------------------------------------------------------------------------------------
# Mirrors (the original URL first, then the Hugging Face Hub) and trust on first use

SMALL = os.urandom(64 * 1024 + 7)
SMALL_SHA = hashlib.sha256(SMALL).hexdigest()
HUB_PATH = "/osanseviero/BigGAN-deep-128/resolve/" + "c" * 40 + "/w.bin"


@pytest.mark.parametrize("status", [404, 503])
def test_a_failing_original_falls_back_to_the_hub_mirror(online, status):
    with FileServer() as srv:
        srv.state.files["/cdn/w.bin"] = SMALL
        srv.state.redirects[HUB_PATH] = "/cdn/w.bin"               # resolve URLs redirect
        if status == 503:
            srv.state.fail_with = [503] * hub.RETRIES               # the original never recovers
        rf = RemoteFile("w.bin", (srv.url("/s3/w.bin"), srv.url(HUB_PATH), srv.url("/never.bin")),
                        size=len(SMALL), sha256=SMALL_SHA)
        assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == SMALL
        paths = [r["path"] for r in srv.state.requests]
    tries = hub.RETRIES if status == 503 else 1
    assert paths == ["/s3/w.bin"] * tries + [HUB_PATH, "/cdn/w.bin"]    # in order; later ones unused


def test_offline_with_mirrors_opens_no_socket(monkeypatch, no_sockets):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="offline"):
        hub.ensure_spec(get_spec("biggan-deep-128"), progress=False)
    assert no_sockets == []


def _tofu_setup(srv):
    srv.state.files["/w.bin"] = SMALL
    return RemoteFile("w.bin", (srv.url("/w.bin"),))               # nothing pinned


def test_first_download_records_the_sha256_and_a_changed_file_is_refused(online):
    from bigganctl.weights import checksums
    from bigganctl.errors import ChecksumError

    with FileServer() as srv:
        rf = _tofu_setup(srv)
        path = hub.ensure_file(rf, "models/test", progress=False)
        record = checksums.read_tofu(path)
        assert record["sha256"] == SMALL_SHA and record["size"] == len(SMALL)
        assert record["source"] == srv.url("/w.bin")
        assert hub.ensure_file(rf, "models/test", progress=False) == path   # verified, no request
        assert len(srv.state.requests) == 1

        path.write_bytes(SMALL[:-1] + b"\0")                         # same size, other bytes
        with pytest.raises(ChecksumError) as e:
            hub.ensure_file(rf, "models/test", progress=False)
        assert "changed since its first download" in str(e.value)
        assert "bigganctl models pull test" in e.value.hint and "--force" in e.value.hint
        assert _visible(path.parent) == [".w.bin.tofu.json"]         # bad file gone, record kept
        assert len(srv.state.requests) == 1                           # refused, not re-fetched

        # Fetching again is checked against the record: the same bytes are accepted...
        assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == SMALL
        # ...a source that changed is refused and leaves nothing but the record...
        checksums.forget(path, keep_record=True)
        srv.state.files["/w.bin"] = SMALL[::-1]
        with pytest.raises(ChecksumError, match="recorded"):
            hub.ensure_file(rf, "models/test", progress=False)
        assert _visible(path.parent) == [".w.bin.tofu.json"]
        # ...until the record is forgotten (`models pull --force`).
        checksums.forget(path)
        assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == SMALL[::-1]
        assert checksums.read_tofu(path)["sha256"] == hashlib.sha256(SMALL[::-1]).hexdigest()


def test_changed_file_is_refused_offline_too(online, monkeypatch, no_sockets):
    from bigganctl.weights import checksums
    from bigganctl.errors import ChecksumError

    folder = hub.home() / "models" / "test"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(SMALL)
    rf = RemoteFile("w.bin", ("http://127.0.0.1:9/never",))
    monkeypatch.setenv("BIGGANCTL_OFFLINE", "1")
    assert hub.ensure_file(rf, "models/test", progress=False) == folder / "w.bin"   # first use
    assert checksums.read_tofu(folder / "w.bin")["source"] == "cache"
    (folder / "w.bin").write_bytes(SMALL + b"!")
    with pytest.raises(ChecksumError, match="size"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert not (folder / "w.bin").exists() and no_sockets == []


def test_pinned_files_get_no_tofu_record_and_a_prefix_pin_does(server):
    pinned = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    prefix = RemoteFile("v.bin", (server.url("/w.bin"),), sha256=SHA[:8])
    hub.ensure_file(pinned, "models/test", progress=False)
    hub.ensure_file(prefix, "models/test", progress=False)
    assert _visible(hub.home() / "models" / "test") == [".v.bin.sha256", ".v.bin.tofu.json",
                                                        ".w.bin.sha256", "v.bin", "w.bin"]
