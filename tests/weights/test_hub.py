"""The weight cache (bigganctl.weights.hub): downloads into the cache and cache hits,
checksum and size checks, mirrors tried in order, one download for concurrent callers, the
offline rules, cache status and verification, against a local HTTP server on 127.0.0.1 (no
internet). The transport (resume, retries, archives) is in test_download.py, the remembered
sha256 and trust on first use in test_checksums.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from _httpserver import FileServer
from _hub_files import PAYLOAD, SHA, SMALL, SMALL_SHA, visible
from bigganctl.weights import hub
from bigganctl.errors import ChecksumError, WeightsUnavailable
from bigganctl.weights.registry import RemoteFile, get_spec


def test_full_download_then_cache_hit(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), size=len(PAYLOAD), sha256=SHA)
    path = hub.ensure_file(rf, "models/test", progress=False)
    assert path == hub.home() / "models" / "test" / "w.bin"
    assert path.read_bytes() == PAYLOAD
    assert len(server.state.requests) == 1 and server.state.requests[0]["range"] is None
    # Only the file and its remembered sha256 remain: no .part, no lock file.
    assert visible(path.parent) == [".w.bin.sha256", "w.bin"]
    assert hub.cached_sha256(path, compute=False) == SHA
    # Second call: served from the cache, no request.
    assert hub.ensure_file(rf, "models/test", progress=False) == path
    assert len(server.state.requests) == 1


def test_checksum_mismatch_is_rejected_and_nothing_is_cached(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert visible(hub.home() / "models" / "test") == []


def test_size_mismatch_is_rejected(server):
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), size=len(PAYLOAD) + 1)
    with pytest.raises(ChecksumError, match="size"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert visible(hub.home() / "models" / "test") == []


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


def test_persistent_failure_names_the_pull_command(server):
    server.state.fail_with = [503] * hub.RETRIES
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    with pytest.raises(WeightsUnavailable, match="bigganctl models pull test"):
        hub.ensure_file(rf, "models/test", progress=False)
    assert len(server.state.requests) == hub.RETRIES


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
# Mirrors (the original URL first, then the Hugging Face Hub)

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
