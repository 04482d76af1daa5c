"""Model zoo: names -> architecture, config, checkpoint format and where the weights live.

A table, not an if-chain. ``bigganctl.weights.hub`` resolves a spec's files on disk; the loader
builds the architecture and reads the files with the spec's format adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..models.config import AUTHOR_CONFIG_128, DEEP_CONFIGS, TFHUB_CONFIGS, TUTORIAL_CONFIG_128, BigGANConfig, BigGANDeepConfig


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model: its name in the cache, where to get it, what it should be."""

    filename: str
    urls: tuple[str, ...]
    size: int | None = None           # bytes, where known
    sha256: str | None = None         # hex, where known
    member: str | None = None         # path inside an archive (zip) download


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str                          # "biggan-deep" | "biggan"
    config: BigGANDeepConfig | BigGANConfig
    format: str                        # "hf" | "ajbrock" | "ivclab" | "tutorial"
    truncation: str                    # "deepmind" | "paper"
    description: str
    files: tuple[RemoteFile, ...] = ()
    paper: dict[str, Any] = field(default_factory=dict)   # published numbers, for docs/info
    notes: str = ""
    local_dir: str | None = None       # set for specs read from a model folder (--model DIR)

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def downloadable(self) -> bool:
        return bool(self.files) and all(f.urls for f in self.files)


_HF_S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan"


def hub_url(repo: str, revision: str, filename: str) -> str:
    """A Hugging Face Hub resolve URL (plain HTTPS; it redirects to the file's CDN copy)."""
    return f"https://huggingface.co/{repo}/resolve/{revision}/{filename}"


# Hugging Face Hub mirrors of the S3 files, tried after them: (repository, pinned commit).
# Only 128 is known to be on the Hub (osanseviero/BigGAN-deep-128, commit c98e5e8 "Rename
# file" is the last to touch pytorch_model.bin); no 256/512 repository could be verified.
_HUB_MIRRORS: dict[int, tuple[str, str]] = {
    128: ("osanseviero/BigGAN-deep-128", "c98e5e826ec6dc3dabaa01b7703d86c34fad5342"),
}


def _deep(res: int, weights_size: int | None = None, weights_sha: str | None = None,
          config_size: int | None = None, config_sha: str | None = None) -> ModelSpec:
    def urls(s3_name: str, filename: str) -> tuple[str, ...]:
        mirror = _HUB_MIRRORS.get(res)
        return (f"{_HF_S3}/{s3_name}",) + ((hub_url(*mirror, filename),) if mirror else ())

    return ModelSpec(
        name=f"biggan-deep-{res}",
        arch="biggan-deep",
        config=DEEP_CONFIGS[res],
        format="hf",
        truncation="deepmind",
        description=f"BigGAN-deep {res}x{res} (DeepMind TF-Hub weights, Hugging Face port)",
        files=(
            RemoteFile("config.json", urls(f"biggan-deep-{res}-config.json", "config.json"),
                       size=config_size, sha256=config_sha),
            RemoteFile("pytorch_model.bin", urls(f"biggan-deep-{res}-pytorch_model.bin", "pytorch_model.bin"),
                       size=weights_size, sha256=weights_sha),
        ),
    )


def _tfhub_config(res: int) -> BigGANConfig:
    # DeepMind TF-Hub biggan-{128,256,512}/2 as ported by ivclab (see models/config.py).
    return TFHUB_CONFIGS[res]


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"duplicate model name {spec.name}")
    REGISTRY[spec.name] = spec
    return spec


# Pins only where a public source states them; every other file is trusted on first use
# (its sha256 recorded at the first download; bigganctl.weights.checksums).
# deep-128 weights: the Hub's Git LFS pointer of osanseviero/BigGAN-deep-128 pytorch_model.bin
# (oid sha256 + size); config.json: 630 bytes in the Hub's file listing (sha256 not stated).
register(_deep(128, 210_849_368, "b86146a8cfcde4cda135adba4b2806f78b3abe2dac9d0fd090cc3ab318604ad9", 630))
# deep-256: weights from a third-party manifest; the hosted config.json is byte-identical
# to BigGANDeepConfig.to_hf_json() (FIELD_NOTES §3a).
register(_deep(256, 234_411_737, "5900ef4065047e3aa0d1b66197b7f2664dceb59b27080e414ad57e203c485bc5",
               715, "edd106f65ff28ee1638491a978cfa6bc50dfa0344aab70749a7b8eb08bbec677"))
register(_deep(512))     # no public size or sha256 found: both files trusted on first use
register(ModelSpec(
    name="biggan-128",
    arch="biggan",
    config=AUTHOR_CONFIG_128,
    format="ajbrock",
    truncation="paper",
    description="BigGAN 128x128, the author's release (ajbrock/BigGAN-PyTorch G_ema.pth, 138k iterations)",
    files=(RemoteFile("G_ema.pth", (), member="138k/G_ema.pth"),),
    notes="Distributed on Google Drive as BigGAN_ch96_bs256x8_138k.zip; download it by hand "
          "and pass --weights PATH/G_ema.pth (or the zip).",
))
for _res in (128, 256, 512):
    register(ModelSpec(
        name=f"biggan-tfhub-{_res}",
        arch="biggan",
        config=_tfhub_config(_res),
        format="ivclab",
        truncation="deepmind",
        description=f"BigGAN {_res}x{_res} (DeepMind TF-Hub biggan-{_res}/2, ivclab PyTorch port)",
        files=(RemoteFile(f"biggan{_res}-release.pt", ()),),
        notes="Released by ivclab/BigGAN-Generator-Pretrained-Pytorch (Google Drive); "
              "download it by hand and pass --weights PATH.",
    ))
register(ModelSpec(
    name="biggan-tutorial-128",
    arch="biggan",
    config=TUTORIAL_CONFIG_128,
    format="tutorial",
    truncation="paper",
    description="BigGAN 128x128 in the tutorial layout (seed document / Coursera C2W3; "
                "no public weights; use --weights)",
    notes="Config as published (attention after every up-block); a file in the seed document's "
          "variant (one attention block, at 64x64) loads too: attention placement is read from its keys.",
))


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name, or raise UsageError with the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"unknown model {name!r}{hint}; see `bigganctl models list`", param="model") from None


# ---------------------------------------------------------------------------------------
# Files that are not generators: the metric feature extractor and friends.

@dataclass(frozen=True)
class Asset:
    """A named bundle of cached files that is not a generator (``bigganctl models pull NAME``)."""

    name: str
    description: str
    subdir: str
    files: tuple[RemoteFile, ...]
    notes: str = ""
    alternative: str = "--weights PATH"    # how to pass the file by hand instead


_FIDELITY = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0"
_PYTORCH_FID = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights"

ASSETS: dict[str, Asset] = {
    "inception": Asset(
        name="inception",
        description="Inception-v3 (TF 2015-12-05 graph) weights for torch-fidelity's "
                    "inception-v3-compat feature extractor (IS / FID / KID)",
        subdir="inception",
        files=(RemoteFile(
            "weights-inception-2015-12-05-6726825d.pth",
            (f"{_FIDELITY}/weights-inception-2015-12-05-6726825d.pth",
             f"{_PYTORCH_FID}/pt_inception-2015-12-05-6726825d.pth"),
            # torch.hub convention: the name carries the first 8 hex digits of the sha256.
            sha256="6726825d",
        ),),
        notes="sha256 known by its 8-digit prefix only (torch.hub naming convention); "
              "the pytorch-fid release file carries the same prefix and serves as a mirror.",
        alternative="--inception-weights PATH",
    ),
}
