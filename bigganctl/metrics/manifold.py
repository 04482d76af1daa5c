"""Improved precision and recall (Kynkäänniemi et al. 2019) as ADM's evaluator computes them.

- Features: Inception ``pool_3`` (2048) of every sample and of the reference images (an ADM
  batch's 10k ``arr_0`` images, or the features a statistics file stores; never ``mu``/``sigma``).
- Distances: squared L2, ``max(|u|^2 - 2 u.v + |v|^2, 0)``.
- Radius of a point: its ``k``-th nearest neighbour in its own set with ``k = 3``, counting
  the point itself at distance 0 (the 4th smallest distance, ``np.partition(d, 3)[:, 3]``).
- Membership is inclusive (``d <= r``). Precision: the share of samples inside some reference
  ball; recall: the share of references inside some sample ball.

Everything runs in blocks of ``block`` x ``block`` distances on the features' device: a
running top-(k+1) per row for the radii, running ``any`` flags for membership. Memory is
O(N * D + block^2) whatever N; there is never an N x N matrix.

``distances="fp32"`` (bigganctl's default) computes the distances in float32.
``distances="fp16"`` mimics ADM's evaluator, which casts the features to float16 and computes
``|u|^2``, ``u.v`` and their sum in float16 (a block with a non-finite value is redone in
float32); here the products accumulate in float32 and each of the three terms and the sum is
rounded to float16 as on a GPU. docs/evaluation.md says how far the two move P/R.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

K = 3
BLOCK = 4096
DISTANCES = ("fp32", "fp16")


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(1)


def sq_distances(u: torch.Tensor, v: torch.Tensor, distances: str = "fp32", *,
                 nu: torch.Tensor | None = None, nv: torch.Tensor | None = None) -> torch.Tensor:
    """``max(|u|^2 - 2 u.v + |v|^2, 0)`` for every pair of rows of ``u`` [A, D] and ``v`` [B, D]
    (float32 result; ``nu``/``nv``: precomputed float32 squared norms)."""
    if distances == "fp16":
        u16, v16 = u.half().float(), v.half().float()
        n1 = _sq_norms(u16).half()
        n2 = _sq_norms(v16).half()
        uv = (u16 @ v16.T).half()
        d = (n1[:, None].float() - (2 * uv).float()).half()           # each step rounded to float16
        d = (d.float() + n2[None, :].float()).half()
        if torch.isfinite(d).all():
            return d.float().clamp_(min=0.0)
    elif distances != "fp32":
        raise ValueError(f"distances must be one of {DISTANCES}, got {distances!r}")
    nu = _sq_norms(u) if nu is None else nu
    nv = _sq_norms(v) if nv is None else nv
    return (nu[:, None] - 2.0 * (u @ v.T) + nv[None, :]).clamp_(min=0.0)


def radii(x: torch.Tensor, *, k: int = K, distances: str = "fp32", block: int = BLOCK) -> torch.Tensor:
    """Each row's ``k``-th nearest-neighbour squared distance within ``x`` (itself counted at
    position 0): the ``(k+1)``-th smallest of its row of distances, float32 [N]."""
    n = x.shape[0]
    if n < k + 1:
        raise ValueError(f"a k={k} neighbourhood needs at least {k + 1} points, got {n}")
    norms = _sq_norms(x)
    out = torch.empty(n, dtype=torch.float32, device=x.device)
    for i in range(0, n, block):
        best = None
        for j in range(0, n, block):
            d = sq_distances(x[i:i + block], x[j:j + block], distances, nu=norms[i:i + block],
                             nv=norms[j:j + block])
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False, sorted=True).values
        out[i:i + block] = best[:, k]
    return out


@dataclass(frozen=True)
class PR:
    precision: float
    recall: float
    n_samples: int
    n_reference: int


def precision_recall(samples: torch.Tensor, reference: torch.Tensor, *, k: int = K, distances: str = "fp32",
                     block: int = BLOCK, device: torch.device | str | None = None) -> PR:
    """Precision and recall of ``samples`` [N, D] against ``reference`` [M, D] (float32, on
    ``device``, default the samples' device)."""
    dev = torch.device(device) if device is not None else samples.device
    if dev.type == "mps":
        dev = torch.device("cpu")
    s = torch.as_tensor(samples).to(dev, torch.float32)
    r = torch.as_tensor(reference).to(dev, torch.float32)
    if s.dim() != 2 or r.dim() != 2 or s.shape[1] != r.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D], got {tuple(s.shape)} and {tuple(r.shape)}")
    r_s = radii(s, k=k, distances=distances, block=block)
    r_r = radii(r, k=k, distances=distances, block=block)
    ns, nr = _sq_norms(s), _sq_norms(r)
    s_in = torch.zeros(s.shape[0], dtype=torch.bool, device=dev)
    r_in = torch.zeros(r.shape[0], dtype=torch.bool, device=dev)
    for i in range(0, s.shape[0], block):
        for j in range(0, r.shape[0], block):
            d = sq_distances(s[i:i + block], r[j:j + block], distances, nu=ns[i:i + block], nv=nr[j:j + block])
            s_in[i:i + block] |= (d <= r_r[None, j:j + block]).any(1)
            r_in[j:j + block] |= (d <= r_s[i:i + block, None]).any(0)
    return PR(float(s_in.double().mean()), float(r_in.double().mean()), int(s.shape[0]), int(r.shape[0]))
