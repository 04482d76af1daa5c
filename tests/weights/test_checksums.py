"""Remembered checksums of cached files (bigganctl.weights.checksums): the trust-on-first-use
record a file without a full pinned sha256 gets on its first download or first use, a changed
file refused online and offline until the record is forgotten, and which files get a record,
against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib

import pytest

from _httpserver import FileServer
from _hub_files import SHA, SMALL, SMALL_SHA, visible
from bigganctl.weights import checksums, hub
from bigganctl.errors import ChecksumError
from bigganctl.weights.registry import RemoteFile


def _tofu_setup(srv):
    srv.state.files["/w.bin"] = SMALL
    return RemoteFile("w.bin", (srv.url("/w.bin"),))               # nothing pinned



def test_first_download_records_the_sha256_and_a_changed_file_is_refused(online):
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
        assert visible(path.parent) == [".w.bin.tofu.json"]         # bad file gone, record kept
        assert len(srv.state.requests) == 1                           # refused, not re-fetched

        # Fetching again is checked against the record: the same bytes are accepted...
        assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == SMALL
        # ...a source that changed is refused and leaves nothing but the record...
        checksums.forget(path, keep_record=True)
        srv.state.files["/w.bin"] = SMALL[::-1]
        with pytest.raises(ChecksumError, match="recorded"):
            hub.ensure_file(rf, "models/test", progress=False)
        assert visible(path.parent) == [".w.bin.tofu.json"]
        # ...until the record is forgotten (`models pull --force`).
        checksums.forget(path)
        assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == SMALL[::-1]
        assert checksums.read_tofu(path)["sha256"] == hashlib.sha256(SMALL[::-1]).hexdigest()



def test_changed_file_is_refused_offline_too(online, monkeypatch, no_sockets):
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
    assert visible(hub.home() / "models" / "test") == [".v.bin.sha256", ".v.bin.tofu.json",
                                                        ".w.bin.sha256", "v.bin", "w.bin"]
