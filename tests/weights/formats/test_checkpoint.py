"""One rule decides which weights file of a model folder is loaded, and the sha256 recorded
(``G.weights_info``, the sample manifest) is the sha256 of that very file."""

from __future__ import annotations

import hashlib

import pytest
import torch

import bigganctl
from bigganctl.weights import loader
from bigganctl.weights.formats import hf
from bigganctl.testing import hf as hf_writer
from bigganctl.weights.formats.checkpoint import find_weights_file
from bigganctl.models.config import BigGANDeepConfig

TINY = BigGANDeepConfig(output_dim=8, channel_width=8, attention_layer_position=1,
                        layers=((False, 16, 16), (True, 16, 8), (False, 8, 4), (False, 4, 2), (False, 2, 1)))


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def both(tmp_path):
    """A folder holding model.safetensors and pytorch_model.bin with different weights."""
    folder = tmp_path / "both"
    hf_writer.write_random_checkpoint(folder, TINY, seed=1, safetensors=True)
    hf_writer.write_random_checkpoint(folder, TINY, seed=2)
    files = {p.name: p for p in folder.iterdir() if p.name != "config.json"}
    assert set(files) == {"model.safetensors", "pytorch_model.bin"}
    assert _sha256(files["model.safetensors"]) != _sha256(files["pytorch_model.bin"])
    return folder


def _loaded_from(G, folder) -> str:
    """Which file's tensors the generator holds."""
    state = G.state_dict()
    hits = []
    for name in ("model.safetensors", "pytorch_model.bin"):
        _, ref = hf.read(folder / name)
        if all(torch.equal(state[k], v) for k, v in ref.items()):
            hits.append(name)
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize("how", ["model", "weights"])
def test_recorded_sha256_is_the_sha256_of_the_loaded_file(both, how):
    loader.clear_cache()
    G = loader.load_generator(both, weights=both if how == "weights" else None, device="cpu")
    loaded = both / _loaded_from(G, both)
    assert G.weights_info["path"] == str(loaded)
    assert G.weights_info["sha256"] == _sha256(loaded)
    assert loaded == find_weights_file(both)                     # the one rule
    assert loaded == hf.find_weights_file(both, hf.WEIGHT_FILES)  # the hf reader's folder rule agrees


def test_sample_manifest_names_the_loaded_file(both):
    loader.clear_cache()
    res = bigganctl.sample(model=str(both), classes=[1], n=1, psi=0.5, device="cpu")
    G = loader.load_generator(both, device="cpu")                # the same (cached) module
    loaded = both / _loaded_from(G, both)
    assert res.manifest["weights"]["sha256"] == _sha256(loaded)
    assert res.manifest["weights"]["path"] == str(loaded)
