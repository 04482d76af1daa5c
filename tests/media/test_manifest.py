"""The manifest beside every output (bigganctl.media.manifest): a sample manifest records the
generator, weights, truncation rule, class-major order, shape and precision; the reproduce
command names exactly the weights that cannot be found by name; versions and creation time."""

from __future__ import annotations

import datetime
import shlex

import torch
from tiny_generator import TinyGenerator

from bigganctl.classes import resolve_classes
from bigganctl.media import manifest as M


def test_sample_manifest_records_what_regenerates_the_images():
    G = TinyGenerator(resolution=16)
    classes = resolve_classes("207,1")
    m = M.sample_manifest(G, "my-model", classes, [5, 6, 7], 0.4)
    assert m["kind"] == "bigganctl.sample" and m["model"] == "my-model"
    assert (m["resolution"], m["z_dim"], m["psi"], m["truncation"]) == (16, 16, 0.4, "deepmind")
    assert m["weights"] == {"source": "instance", "sha256": None}     # an in-memory model
    assert [c["index"] for c in m["classes"]] == [207, 1] and m["seeds"] == [5, 6, 7]
    assert m["shape"] == [6, 3, 16, 16] and m["order"].startswith("class-major")
    assert (m["dtype"], m["device"]) == ("fp32", "cpu")
    assert m["versions"]["torch"] == torch.__version__
    when = datetime.datetime.fromisoformat(m["created"])
    assert when.tzinfo is not None and when.microsecond == 0


def test_precision_follows_the_parameters():
    assert M.precision(TinyGenerator().to(torch.bfloat16)) == ("bf16", "cpu")


def test_versions_of_named_packages():
    v = M.versions("torch", "no-such-package-bigganctl")
    assert v["torch"] is not None and v["no-such-package-bigganctl"] is None
    assert set(v) == {"bigganctl", "python", "torch", "no-such-package-bigganctl"}


def _manifest(weights: dict, dtype: str = "fp32") -> dict:
    return {"model": "biggan-deep-128", "weights": weights, "psi": 0.5, "dtype": dtype,
            "classes": [{"index": 207}, {"index": 1}], "seeds": [0, 1, 2, 3, 9]}


def test_reproduce_command_names_only_weights_that_need_naming():
    base = "bigganctl sample --model biggan-deep-128"
    tail = "--class 207,1 --seeds 0-3,9 --trunc 0.5"
    assert M.reproduce_command(_manifest({"source": "cache", "sha256": "ab"})) == f"{base} {tail}"
    assert M.reproduce_command(_manifest({"sha256": "random"})) == f"{base} --weights random {tail}"
    local = M.reproduce_command(_manifest({"source": "file", "path": "/w/my G.pth"}, dtype="bf16"))
    assert shlex.split(local) == [*shlex.split(base), "--weights", "/w/my G.pth", *shlex.split(tail),
                                  "--dtype", "bf16"]
    assert "--weights other.pth" in M.reproduce_command(_manifest({"source": "cache"}), weights="other.pth")
