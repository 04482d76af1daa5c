"""The download transport (bigganctl.weights.download) as the hub drives it: an interrupted
transfer resumes with a Range request, a .part file of an earlier run is resumed, a server
that ignores Range restarts cleanly, transient errors are retried, an unreachable network
fails fast, and a member is copied out of a zip download, against a local HTTP server on
127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import io
import socket
import time
import zipfile

import pytest

from _hub_files import PAYLOAD, SHA, visible
from bigganctl.weights import hub
from bigganctl.errors import WeightsUnavailable
from bigganctl.weights.registry import RemoteFile


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



def test_transient_errors_are_retried(server):
    server.state.fail_with = [503, 502]
    rf = RemoteFile("w.bin", (server.url("/w.bin"),), sha256=SHA)
    assert hub.ensure_file(rf, "models/test", progress=False).read_bytes() == PAYLOAD
    assert len(server.state.requests) == 3



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
    assert visible(path.parent) == [".G_ema.pth.sha256", "G_ema.pth"]   # archive removed
