"""The model registry: every verified file lists the Hugging Face Hub mirror after the original
URL, with the sizes and checksums of the published files."""

from __future__ import annotations

from bigganctl.weights.registry import get_spec


def test_registry_lists_the_hub_mirror_after_the_original():
    for f in get_spec("biggan-deep-128").files:
        s3, mirror = f.urls
        assert s3.startswith("https://s3.amazonaws.com/models.huggingface.co/biggan/")
        repo, rev, name = mirror.removeprefix("https://huggingface.co/").split("/resolve/")[0], \
            *mirror.split("/resolve/")[1].split("/")
        assert repo == "osanseviero/BigGAN-deep-128" and len(rev) == 40 and name == f.filename
    w = get_spec("biggan-deep-128").files[1]                      # the Hub's LFS pointer
    assert w.size == 210_849_368 and w.sha256.startswith("b86146a8")
    assert all(len(f.urls) == 1 for f in get_spec("biggan-deep-512").files)   # none verified
