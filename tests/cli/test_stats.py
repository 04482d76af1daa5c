"""`bigganctl stats list | info`: registered and local reference statistics, text and JSON."""

from __future__ import annotations


from _metrics_util import mu_sigma
from bigganctl.metrics.reference import (
    Stats,
    write_stats,
)


def test_stats_list_and_info_cli(cli, tmp_path):
    r = cli("stats", "list", "--json")
    assert r.exit_code == 0
    names = [x["name"] for x in r.json()["references"]]
    assert names == ["imagenet-64", "imagenet-128", "imagenet-256", "imagenet-512"]
    assert not any(x["cached"] for x in r.json()["references"])
    mu, sigma = mu_sigma()
    write_stats(tmp_path / "s.npz", Stats(mu, sigma, None, {"extractor_id": "x", "count": 3}))
    r = cli("stats", "info", str(tmp_path / "s.npz"), "--json")
    assert r.exit_code == 0, r.stderr
    info = r.json()
    assert info["dim"] == 2048 and info["count"] == 3 and info["has_features"] is False
    r = cli("stats", "info", "imagenet-256", "--json")
    assert r.exit_code == 0 and r.json()["cached"] is False and "stats pull" in r.json()["hint"]
    assert cli("stats", "info", "nope.npz").exit_code == 2
    r = cli("stats", "pull", "imagenet-64")              # offline in tests
    assert r.exit_code == 1 and "stats pull imagenet-64" in r.stderr
