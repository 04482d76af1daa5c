"""`bigganctl bench` as a command: --json reports the model, where its weights came from,
whole batches of the batch size, throughput, load time, peak memory and the projected
FID-50k time; a bad --trunc exits 2 naming the option. A tiny test-only generator."""

from __future__ import annotations

import pytest

from _loader_tiny import register as register_tiny
from bigganctl.weights import loader


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    register_tiny(monkeypatch)
    yield
    loader.clear_cache()


def test_bench_command_times_generation(cli):
    r = cli("bench", "--model", "tiny-8", "--n", "6", "--batch-size", "4", "--device", "cpu", "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["model"] == "tiny-8" and doc["weights"]["source"] == "random"
    assert doc["n"] == 8 and doc["batch_size"] == 4 and doc["images_per_s"] > 0    # whole batches
    assert doc["load_s"] >= 0 and doc["peak_rss_mb"] > 10
    assert doc["features_per_s"] > 0 and doc["fid50k_s"] == doc["runs"]["eager"]["fid50k_s"] > 0
    r = cli("bench", "--model", "tiny-8", "--n", "2", "--trunc", "0")
    assert r.exit_code == 2 and "--trunc" in r.stderr
