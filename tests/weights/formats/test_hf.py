"""The Hugging Face checkpoint format of BigGAN-deep (bigganctl.weights.formats.hf): its expected
keys equal the reference key list, config.json byte-identical to the port's, the written
random checkpoint is that format, spectral norm folded as torch computes it in eval mode,
strict keys naming the offending key, the read variants (safetensors, a lone weights file,
the spec's config) and refusals (missing files, bad config, non-finite weights, pickles that
run code, directly and through the loader), a model folder round trip through the loader."""

from __future__ import annotations

import hashlib
import pickle
import re
import types
from pathlib import Path

import pytest
import torch

from _checkpoint_util import MarkerPickle, state_hash
from _deep_util import random_checkpoints
from _tiny_configs import TINY
from bigganctl.errors import CheckpointError, UsageError
from bigganctl.models.config import DEEP_CONFIGS
from bigganctl.testing import hf as hf_writer
from bigganctl.weights import loader
from bigganctl.weights.formats import hf
from bigganctl.weights.registry import REGISTRY

KEYS_FILE = Path(__file__).resolve().parents[2] / "data" / "keys" / "hf_biggan_deep_128_keys.txt"   # = shared/data/keys


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """res -> folder of a random HF checkpoint (written once per session)."""
    return random_checkpoints(tmp_path_factory)


def _keys_file() -> dict[str, tuple[int, ...]]:
    out = {}
    for line in open(KEYS_FILE, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        name, shape, _dtype = line.rstrip("\n").split("\t")
        out[name] = tuple(int(s) for s in re.findall(r"\d+", shape))
    return out


def test_expected_keys_equal_the_reference_key_list():
    assert list(hf.expected_keys(DEEP_CONFIGS[128]).items()) == list(_keys_file().items())
    assert len(hf.expected_keys(DEEP_CONFIGS[256])) == 602
    assert len(hf.expected_keys(DEEP_CONFIGS[512])) == 698


@pytest.mark.parametrize("res,size,head,tail", [
    (128, 630, "a6bb3c38", "eeb6ad"), (256, 715, "edd106f6", "bec677"), (512, 800, "c7690e92", "a6821")])
def test_config_json_is_byte_identical_to_the_port(res, size, head, tail):
    """sha256 prefixes/suffixes of the port's generated configs (FIELD_NOTES 3a; its 512
    tail reads ``6a821``, the digest is ``c7690e92...37a6821``)."""
    text = DEEP_CONFIGS[res].to_hf_json().encode()
    digest = hashlib.sha256(text).hexdigest()
    assert len(text) == size and digest.startswith(head) and digest.endswith(tail)


def test_written_checkpoint_is_the_hf_format(ckpt):
    folder = ckpt("tiny")
    assert (folder / "config.json").read_text() == TINY.to_hf_json()
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert list(state) == list(hf.expected_keys(TINY))
    assert all(bool((state[k] > 0).all()) for k in state if k.endswith("running_vars"))
    # u, v are converged: sigma = u . W v is close to the top singular value.
    w = state["generator.layers.0.conv_1.weight_orig"].reshape(32, -1)
    sigma = torch.dot(state["generator.layers.0.conv_1.weight_u"],
                      w @ state["generator.layers.0.conv_1.weight_v"])
    assert sigma == pytest.approx(torch.linalg.matrix_norm(w, ord=2).item(), rel=1e-2)


def test_sn_is_folded_as_torch_computes_it_in_eval_mode(ckpt):
    state = torch.load(ckpt("tiny") / "pytorch_model.bin", weights_only=True)
    _, ours = hf.read(ckpt("tiny"))
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(32, 32, 3, padding=1), eps=1e-4)
    p = "generator.layers.0.conv_1"
    conv.load_state_dict({"bias": state[f"{p}.bias"], "weight_orig": state[f"{p}.weight_orig"],
                          "weight_u": state[f"{p}.weight_u"], "weight_v": state[f"{p}.weight_v"]})
    conv.eval()
    with torch.no_grad():
        conv(torch.zeros(1, 32, 4, 4))
    torch.testing.assert_close(ours[f"{p}.weight"], conv.weight, rtol=1e-6, atol=0)
    assert f"{p}.weight_orig" not in ours and f"{p}.weight_u" not in ours


def _write_state(folder, state, config=TINY):
    return hf_writer.write_checkpoint(folder, config, state)


@pytest.mark.parametrize("change", ["removed", "renamed", "misshaped"])
def test_strict_keys_name_the_offending_key(ckpt, tmp_path, change):
    state = torch.load(ckpt("tiny") / "pytorch_model.bin", weights_only=True)
    key = "generator.layers.0.conv_1.bias"
    if change == "removed":
        del state[key]
        patterns = ["1 missing", key]
    elif change == "renamed":
        state[key + "_typo"] = state.pop(key)
        patterns = ["1 missing, 1 unexpected", key, key + "_typo"]
    else:
        key = "embeddings.weight"
        state[key] = torch.zeros(128, 999)
        patterns = ["1 mis-shaped", key, "(128, 999)", "(128, 1000)"]
    folder = _write_state(tmp_path / change, state)
    with pytest.raises(CheckpointError) as info:
        hf.read(folder)
    for p in patterns:
        assert p in str(info.value)


def test_read_variants_and_refusals(ckpt, tmp_path):
    folder = ckpt("tiny")
    cfg, base = hf.read(folder)
    assert cfg == TINY
    # safetensors folder
    st = hf_writer.write_random_checkpoint(tmp_path / "st", TINY, seed=7, safetensors=True)
    assert (st / "model.safetensors").is_file() and not (st / "pytorch_model.bin").exists()
    _, from_st = hf.read(st)
    assert all(torch.equal(from_st[k], base[k]) for k in base)
    # a single weights file: config beside it, else the spec's
    lone = tmp_path / "lone" / "weights.bin"
    lone.parent.mkdir()
    lone.write_bytes((folder / "pytorch_model.bin").read_bytes())
    spec = types.SimpleNamespace(name="biggan-deep-tiny", config=TINY)
    assert hf.read(lone, spec)[0] == TINY
    with pytest.raises(CheckpointError, match="no config.json"):
        hf.read(lone)
    # wrong spec config for this file: strict key check fails, naming the spec
    with pytest.raises(CheckpointError, match="biggan-deep-128"):
        hf.read(lone, types.SimpleNamespace(name="biggan-deep-128", config=DEEP_CONFIGS[128]))
    # no weights, no path, bad config
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        hf.read(empty)
    with pytest.raises(CheckpointError, match="not found"):
        hf.read(tmp_path / "nope")
    (empty / "config.json").write_text('{"layers": [[false, 16]]}')
    (empty / "pytorch_model.bin").write_bytes((folder / "pytorch_model.bin").read_bytes())
    with pytest.raises(CheckpointError, match="not a BigGAN-deep config"):
        hf.read(empty)
    (empty / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        hf.read(empty)


def test_non_finite_weights_are_refused(ckpt, tmp_path):
    state = torch.load(ckpt("tiny") / "pytorch_model.bin", weights_only=True)
    state["generator.gen_z.bias"][3] = float("nan")
    with pytest.raises(CheckpointError, match="generator.gen_z.bias"):
        hf.read(_write_state(tmp_path / "nan", state))


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(TINY.to_hf_json())
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"embeddings.weight": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="refused"):
        hf.read(folder)
    assert not (tmp_path / "PWNED").exists()


def test_malicious_pickle_refused_by_the_hf_format(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(REGISTRY["biggan-deep-128"].config.to_hf_json())
    torch.save({"embeddings.weight": MarkerPickle(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        loader.load_generator("biggan-deep-128", weights=folder, device="cpu")
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        loader.load_generator(folder, device="cpu")
    assert not marker.exists()


def test_hf_folder_round_trip_and_config_mismatch(tmp_path):
    from bigganctl.testing import hf

    cfg = REGISTRY["biggan-deep-128"].config
    hf.write_random_checkpoint(tmp_path / "d128", cfg, 3)
    G = loader.load_generator(tmp_path / "d128", device="cpu")
    assert G.spec.arch == "biggan-deep" and G.spec.config == cfg
    G2 = loader.load_generator("biggan-deep-128", weights=tmp_path / "d128", device="cpu")
    assert state_hash(G2) == state_hash(G)
    with pytest.raises(UsageError) as e:
        loader.load_generator("biggan-deep-256", weights=tmp_path / "d128", device="cpu")
    assert e.value.param == "weights" and "output_dim" in str(e.value)
