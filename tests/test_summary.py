"""`--summary FILE` of eval and bench, bench's throughput gate and the machine in its JSON
(docs/ci.md). Small inputs: ten 32 px images for eval, a narrow BigGAN-deep folder for bench."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.runtime.machine import isa
from bigganctl.models.config import DEEP_CONFIGS


@pytest.fixture
def narrow_model(tmp_path):
    """A Hugging Face-style folder: biggan-deep-128's layout at channel width 4 (random weights)."""
    folder = tmp_path / "narrow"
    folder.mkdir()
    (folder / "config.json").write_text(dataclasses.replace(DEEP_CONFIGS[128], channel_width=4).to_hf_json())
    return folder


def test_eval_summary_records_numbers_gates_and_protocol(cli, tmp_path):
    images = write_folder(tmp_path / "imgs", smooth_images(10, 1, size=32, grid=4))
    summary = tmp_path / "summary.md"
    r = cli("eval", "is", "--images", images, "--inception-weights", inception_file(), "--device", "cpu",
            "--min-is", "1000", "--summary", summary, "--json", "--quiet")
    assert r.exit_code == 3, r.stderr                      # the gate is missed; the summary still written
    is_mean = r.json()["is_mean"]
    text = summary.read_text()
    assert text.startswith("### bigganctl eval is\n")
    assert f"| IS | {is_mean:.4f} |" in text
    assert f"- ❌ missed: IS {is_mean:.4f} ≥ --min-is 1000" in text
    assert "n `10`" in text and "extractor `inception-v3-compat:sha256=" in text
    r = cli("eval", "is", "--images", images, "--inception-weights", inception_file(), "--device", "cpu",
            "--min-is", "1", "--summary", summary, "--quiet")
    assert r.exit_code == 0, r.stderr
    text = summary.read_text()
    assert text.count("### bigganctl eval is") == 2 and "- ✅ passed: IS" in text


def test_bench_gate_machine_and_summary(cli, tmp_path, narrow_model):
    summary = tmp_path / "s.md"
    args = ["bench", "--model", narrow_model, "--weights", "random", "--n", "2", "--batch-size", "2",
            "--no-features", "--device", "cpu", "--summary", summary]
    r = cli(*args, "--min-images-per-s", "1e9", "--json")
    assert r.exit_code == 3
    assert "throughput gate missed" in r.stderr and "--min-images-per-s 1e+09" in r.stderr
    doc = r.json()                                          # printed before the gate fails
    system = doc["system"]
    assert system["isa"] == isa() and system["isa"] != "unknown"
    assert system["threads"] == torch.get_num_threads() and system["torch"] == torch.__version__
    assert system["cpu"] and system["device_name"] == system["cpu"]          # a CPU run: the CPU's name
    text = summary.read_text()
    assert "### bigganctl bench" in text and "❌ missed" in text and f"isa `{system['isa']}`" in text

    r = cli(*args, "--min-images-per-s", "0.001")
    assert r.exit_code == 0, r.stderr
    assert "machine" in r.stdout and system["isa"] in r.stdout
    assert summary.read_text().count("### bigganctl bench") == 2 and "✅ passed" in summary.read_text()
