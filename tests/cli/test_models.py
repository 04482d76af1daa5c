"""``bigganctl models list | info | pull | verify`` and loader errors through the CLI."""

from __future__ import annotations

import hashlib
import os

import torch

from _httpserver import FileServer
from bigganctl.weights import hub
from bigganctl.weights.registry import REGISTRY, ModelSpec, RemoteFile

DATA = os.urandom(200_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_list_json_is_valid_and_complete(cli):
    r = cli("models", "list", "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    names = [m["name"] for m in doc["models"]]
    assert names == list(REGISTRY)
    assert {"biggan-deep-128", "biggan-deep-256", "biggan-deep-512", "biggan-128",
            "biggan-tfhub-128"} <= set(names)
    assert [a["name"] for a in doc["assets"]] == ["inception"]
    by = {m["name"]: m for m in doc["models"]}
    assert by["biggan-deep-256"]["cache"] == "missing" and by["biggan-128"]["cache"] == "manual"
    assert by["biggan-deep-256"]["size"] == 234_411_737
    assert doc["offline"] is True and doc["home"] == str(hub.home())


def test_list_shows_cache_state(cli):
    spec = REGISTRY["biggan-deep-128"]
    hub.spec_dir(spec).mkdir(parents=True)
    for f in spec.files:
        (hub.spec_dir(spec) / f.filename).write_bytes(b"x")
    r = cli("models", "list")
    assert r.exit_code == 0
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("biggan-deep-128"))
    assert line.split()[-1] == "cached"
    assert cli("models", "list", "--json").json()["models"][0]["cache"] == "cached"


def test_info_deep_256_shows_config_sources_size_sha_cache(cli):
    r = cli("models", "info", "biggan-deep-256")
    assert r.exit_code == 0, r.stderr
    text = " ".join(r.stdout.split())
    for needle in ("output_dim 256", "n_stats 51", "channel_width 128",            # config
                   "biggan-deep-256-pytorch_model.bin",                           # source
                   "234,411,737 bytes",                                           # size
                   "5900ef4065047e3aa0d1b66197b7f2664dceb59b27080e414ad57e203c485bc5",
                   "not cached", "deepmind", "TruncNorm(-2, 2)"):
        assert needle in text, needle
    doc = cli("models", "info", "biggan-deep-256", "--json").json()
    assert doc["config"]["output_dim"] == 256 and len(doc["config"]["layers"]) == 12
    w = doc["files"][1]
    assert w["filename"] == "pytorch_model.bin" and w["size"] == 234_411_737
    assert w["sha256"].startswith("5900ef40") and w["urls"][0].startswith("https://")
    assert doc["cache"] == "missing" and doc["truncation"] == "deepmind"


def test_info_unknown_name_is_a_usage_error(cli):
    r = cli("models", "info", "biggan-deep-265")
    assert r.exit_code == 2
    assert "NAME" in r.stderr and "biggan-deep-256" in r.stderr
    assert r.stdout == ""


def test_pull_offline_explains(cli):
    r = cli("models", "pull", "biggan-deep-128")
    assert r.exit_code == 1
    assert "offline" in r.stderr and "BIGGANCTL_HOME" in r.stderr


def test_pull_offline_of_a_cached_model_checks_it_and_exits_0(cli, monkeypatch):
    spec = ModelSpec(name="test-model", arch="biggan-deep", config=REGISTRY["biggan-deep-128"].config,
                     format="hf", truncation="deepmind", description="test",
                     files=(RemoteFile("w.bin", ("http://127.0.0.1:9/w.bin",), size=len(DATA), sha256=SHA),))
    monkeypatch.setitem(REGISTRY, "test-model", spec)
    hub.spec_dir(spec).mkdir(parents=True)
    (hub.spec_dir(spec) / "w.bin").write_bytes(DATA)
    r = cli("models", "pull", "test-model")                         # offline (conftest)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(hub.spec_dir(spec))
    r = cli("models", "pull", "test-model", "--force")              # would re-download
    assert r.exit_code == 1 and "offline" in r.stderr and "--force" in r.stderr
    (hub.spec_dir(spec) / "w.bin").write_bytes(DATA[:-1] + b"\0")     # damaged: reported, kept
    r = cli("models", "pull", "test-model")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert (hub.spec_dir(spec) / "w.bin").exists()


def test_pull_and_verify_against_a_local_server(cli, monkeypatch):
    monkeypatch.delenv("BIGGANCTL_OFFLINE")
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    with FileServer() as srv:
        srv.state.files["/w.bin"] = DATA
        spec = ModelSpec(name="test-model", arch="biggan-deep", config=REGISTRY["biggan-deep-128"].config,
                         format="hf", truncation="deepmind", description="test",
                         files=(RemoteFile("w.bin", (srv.url("/w.bin"),), size=len(DATA), sha256=SHA),))
        monkeypatch.setitem(REGISTRY, "test-model", spec)
        asset = hub.Asset(name="inception", description="test inception", subdir="inception",
                          files=(RemoteFile("inc.pth", (srv.url("/w.bin"),), sha256=SHA[:8]),))
        monkeypatch.setitem(hub.ASSETS, "inception", asset)
        r = cli("models", "pull", "test-model", "inception", "--quiet", "--json")
        assert r.exit_code == 0, r.stderr
        doc = r.json()
        assert [p["name"] for p in doc["pulled"]] == ["test-model", "inception"]
        assert open(doc["pulled"][1]["files"][0], "rb").read() == DATA
        assert len(srv.state.requests) == 2

    r = cli("models", "verify", "test-model", "inception", "--json")
    assert r.exit_code == 0, r.stderr
    assert [f["status"] for res in r.json()["results"] for f in res["files"]] == ["ok", "ok"]

    (hub.spec_dir(spec) / "w.bin").write_bytes(DATA[:-1] + b"\0")
    r = cli("models", "verify", "test-model")
    assert r.exit_code == 1
    assert "mismatch" in r.stdout and "w.bin" in r.stderr and "models pull test-model" in r.stderr


def test_verify_missing_file_exits_1(cli):
    r = cli("models", "verify", "biggan-deep-128")
    assert r.exit_code == 1 and "not cached" in r.stderr


def test_bad_checkpoint_via_cli_names_the_key(cli, tmp_path):
    from bigganctl.testing import hf

    folder = tmp_path / "bad"
    hf.write_random_checkpoint(folder, REGISTRY["biggan-deep-128"].config, 0)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    key = sorted(state)[len(state) // 2]
    del state[key]
    torch.save(state, folder / "pytorch_model.bin")
    r = cli("bench", "--model", "biggan-deep-128", "--weights", str(folder), "--n", "1", "--device", "cpu")
    assert r.exit_code == 1
    assert key in r.stderr and "missing" in r.stderr
    assert "Traceback" not in r.stderr


def test_info_on_a_model_folder(cli, tmp_path):
    folder = tmp_path / "my-deep"
    folder.mkdir()
    (folder / "config.json").write_text(REGISTRY["biggan-deep-256"].config.to_hf_json())
    (folder / "pytorch_model.bin").write_bytes(DATA)
    doc = cli("models", "info", str(folder), "--json").json()
    assert doc["arch"] == "biggan-deep" and doc["resolution"] == 256 and doc["cache"] == "local"
    assert doc["files"][0]["sha256"] == SHA and doc["size"] == len(DATA)


def test_list_knows_the_deep_128_size_and_checksum_states(cli):
    doc = cli("models", "list", "--json").json()
    by = {m["name"]: m for m in doc["models"]}
    assert by["biggan-deep-128"]["size"] == 210_849_368                  # pinned from the Hub
    assert by["biggan-deep-128"]["checksums"] == {"config.json": "unknown", "pytorch_model.bin": "pinned"}
    assert by["biggan-deep-256"]["checksum"] == "pinned" and by["biggan-deep-512"]["checksum"] == "unknown"
    line = next(ln for ln in cli("models", "list").stdout.splitlines() if ln.startswith("biggan-deep-128"))
    assert "210.8 MB" in line and line.split()[-2] == "?"          # config.json not yet known


def test_info_shows_pinned_vs_tofu_and_a_changed_file_exits_1(cli, monkeypatch):
    monkeypatch.delenv("BIGGANCTL_OFFLINE")
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    with FileServer() as srv:
        srv.state.files["/w.bin"] = DATA
        srv.state.files["/c.json"] = b"{}"
        spec = ModelSpec(name="test-model", arch="biggan-deep", config=REGISTRY["biggan-deep-128"].config,
                         format="hf", truncation="deepmind", description="test",
                         files=(RemoteFile("config.json", (srv.url("/c.json"),)),
                                RemoteFile("w.bin", (srv.url("/missing"), srv.url("/w.bin")),
                                           size=len(DATA), sha256=SHA)))
        monkeypatch.setitem(REGISTRY, "test-model", spec)
        before = cli("models", "info", "test-model", "--json").json()["files"]
        assert [f["checksum"] for f in before] == ["unknown", "pinned"]
        assert cli("models", "pull", "test-model", "--quiet").exit_code == 0
        files = cli("models", "info", "test-model", "--json").json()["files"]
        assert [f["checksum"] for f in files] == ["tofu", "pinned"]
        assert files[0]["recorded_sha256"] == hashlib.sha256(b"{}").hexdigest() and files[0]["recorded_size"] == 2
        text = " ".join(cli("models", "info", "test-model").stdout.split())
        assert "recorded on first use (TOFU" in text and "pinned (stated by the registry)" in text

        (hub.spec_dir(spec) / "config.json").write_bytes(b"[]")          # changed in the cache
        r = cli("models", "pull", "test-model")
        assert r.exit_code == 1 and "changed since its first download" in r.stderr
        assert "models pull test-model --force" in r.stderr and "Traceback" not in r.stderr
        assert not (hub.spec_dir(spec) / "config.json").exists()
        srv.state.files["/c.json"] = b"{ }"                                # the source changed too
        assert cli("models", "pull", "test-model").exit_code == 1
        r = cli("models", "pull", "test-model", "--force", "--quiet")
        assert r.exit_code == 0, r.stderr
        assert (hub.spec_dir(spec) / "config.json").read_bytes() == b"{ }"
