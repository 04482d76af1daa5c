"""The contract every BigGAN checkpoint adapter keeps (``ajbrock``, ``ivclab``, ``tutorial``,
over the shared layout of ``bigganctl/weights/formats/_biggan.py``): its expected keys equal
the real module's key list (names, shapes, order), a full-size random state converts and
loads strictly, and a broken key (removed, renamed, mis-shaped) is named in one readable
error, from a state dict or from a file."""

from __future__ import annotations

import pytest
import torch

from _biggan_util import FORMATS, FULL, KEY_FILES, broken, read_key_file
from _tiny_configs import SMALL, SMALL_FORMAT
from bigganctl.errors import CheckpointError
from bigganctl.models.biggan import BigGAN


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_expected_keys_equal_shared_key_lists(fmt):
    want = read_key_file(KEY_FILES[fmt])
    got = list(FORMATS[fmt].expected_keys(FULL[fmt]).items())
    assert got == want            # names, shapes and the file's order


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_full_size_random_state_loads_strictly(fmt, full_random_states):
    cfg = FULL[fmt]
    internal = FORMATS[fmt].to_internal(full_random_states[fmt], cfg)
    model = BigGAN(cfg)
    model.load_state_dict(internal, strict=True)       # every internal key, right shapes
    assert all(torch.isfinite(t).all() for t in internal.values())


@pytest.mark.parametrize("how", ["removed", "renamed", "misshaped"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_broken_state_dict_names_the_key(fmt, how, full_random_states):
    sd, names = broken(full_random_states[fmt], how)
    with pytest.raises(CheckpointError) as e:
        FORMATS[fmt].to_internal(sd, FULL[fmt], what="G.pth")
    msg = str(e.value)
    assert e.value.exit_code == 1
    assert msg.startswith("G.pth: ") and all(n in msg for n in names)
    assert len(msg.splitlines()) <= 4                    # one readable error, not a dump


@pytest.mark.parametrize("name", ["ajbrock", "ivclab", "seed"])
def test_read_from_file_with_broken_key(name, small_files, tmp_path):
    foreign = torch.load(small_files[name], weights_only=True)
    key = next(k for k in foreign if k.endswith("conv1.bias"))
    del foreign[key]
    torch.save(foreign, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        SMALL_FORMAT[name].read(tmp_path / "broken.pth", SMALL[name])
