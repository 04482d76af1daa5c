"""The inception-v3-compat extractor: the random weights file, torch-fidelity equality, and
where weights come from (explicit path, torch-fidelity's cache, bigganctl's cache, offline)."""

from __future__ import annotations

import pytest
import torch

from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.errors import CheckpointError, UsageError, WeightsUnavailable
from bigganctl.metrics.features import (
    INCEPTION_WEIGHTS,
    InceptionFeatures,
    build_extractor,
    extractor_id,
    resolve_weights,
    state_dict_shapes,
)


def test_random_weights_file_has_the_exact_state_dict():
    state = torch.load(inception_file(), weights_only=True)
    assert len(state) == 566
    assert {k: tuple(v.shape) for k, v in state.items()} == state_dict_shapes()


@pytest.mark.numerics
def test_features_equal_torch_fidelity_extractor():
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    x = torch.from_numpy(smooth_images(2, 0, size=24)).permute(0, 3, 1, 2).contiguous()
    ours = InceptionFeatures(inception_file())
    feats, logits = ours(x)
    ref = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(inception_file())).eval()
    with torch.no_grad():
        f2, l2 = ref(x)
    assert feats.dtype == torch.float32 and feats.shape == (2, 2048) and logits.shape == (2, 1008)
    # The same network: with torch-fidelity's NCHW layout the bits are its bits...
    with torch.no_grad():
        f3, l3 = build_extractor(torch.load(inception_file(), weights_only=True))(x)
    assert torch.equal(f3, f2) and torch.equal(l3, l2)
    # ...and ours runs NHWC on the CPU (faster): float rounding only. Measured relative to
    # the largest value over 3 image sets: features 5.6e-7, logits 6.8e-6 with ATen avx512,
    # avx2 and default and oneDNN capped at AVX2 (docs/development.md, "Numerics").
    assert (feats - f2).abs().max() <= 5e-6 * f2.abs().max()
    assert (logits - l2).abs().max() <= 5e-5 * l2.abs().max()
    # non-degenerate: features and class probabilities differ between images
    assert (feats.std(0) > 0).float().mean() > 0.5
    assert (logits[0] - logits[1]).abs().max() > 0.1 and (feats[0] - feats[1]).abs().max() > 1e-3
    assert ours.id == extractor_id(ours.sha256) and ours.id.startswith("inception-v3-compat:sha256=")


def test_official_weights_are_named_after_the_tf_graph():
    assert extractor_id("6726825d" + "0" * 56) == "tf-inception-2015-12-05"


def test_weights_with_wrong_keys_are_refused(tmp_path):
    state = torch.load(inception_file(), weights_only=True)
    state.pop("fc.weight")
    state["fc.weightx"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="1 missing, 1 unexpected"):
        InceptionFeatures(tmp_path / "bad.pth")


def test_weights_resolution_order(tmp_path, monkeypatch):
    with pytest.raises(UsageError) as e:
        resolve_weights(tmp_path / "nope.pth")
    assert e.value.param == "inception_weights"
    with pytest.raises(WeightsUnavailable) as e:           # offline, nothing cached (conftest)
        resolve_weights()
    assert "models pull inception" in str(e.value) + str(e.value.hint)
    assert "--inception-weights" in str(e.value) + str(e.value.hint)
    hub_copy = torch.hub.get_dir() + "/checkpoints/" + INCEPTION_WEIGHTS.filename   # torch-fidelity's cache
    import os

    os.makedirs(os.path.dirname(hub_copy))
    os.symlink(inception_file(), hub_copy)
    assert str(resolve_weights()) == hub_copy


def test_cli_offline_without_inception_weights_exits_1(cli, tmp_path):
    write_folder(tmp_path / "imgs", smooth_images(10, 0, size=8))
    r = cli("eval", "is", "--images", tmp_path / "imgs", "--device", "cpu")
    assert r.exit_code == 1
    assert "models pull inception" in r.stderr and "Traceback" not in r.stderr
    r = cli("eval", "is", "--images", tmp_path / "imgs", "--inception-weights", tmp_path / "missing.pth")
    assert r.exit_code == 2 and "--inception-weights" in r.stderr


# ----------------------------------------------------------------------------- GPU-path behaviour on the CPU

class _FakeNet:
    """Per-row 'features' that record the TF32 flags and run out of memory above ``limit``."""

    def __init__(self, limit: int = 10**9):
        self.limit, self.sizes, self.flags = limit, [], []

    def __call__(self, x):
        self.sizes.append(x.shape[0])
        self.flags.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        if x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        f = x.float().mean(dim=(2, 3)).repeat(1, 4)
        return f, f[:, :5] * 2


def _fx(net) -> InceptionFeatures:
    fx = object.__new__(InceptionFeatures)           # no weights file: only the call path
    fx.device, fx._run, fx.rows = torch.device("cpu"), net, None
    return fx


@pytest.fixture
def tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_is_off_inside_the_extractor_and_restored_after(tf32_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    net = _FakeNet()
    _fx(net)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    assert net.flags == [(False, False)]
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    _fx(net)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    assert torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_out_of_memory_in_the_extractor_splits_the_batch():
    x = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    want = _fx(_FakeNet())(x)
    net = _FakeNet(limit=3)
    fx = _fx(net)
    got = fx(x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert net.sizes[:3] == [8, 4, 2] and fx.rows == 2         # and the next batch starts at 2
    fx(x[:5])
    assert max(net.sizes[-3:]) == 2
    with pytest.raises(torch.cuda.OutOfMemoryError):
        _fx(_FakeNet(limit=0))(x[:2])
