"""Deterministic random weights: the builders behind ``random_init_`` and the random
checkpoints the format writers produce (pure maths; no files, no format knowledge).

- BigGAN-deep: seeded uniform weights divided by the random-matrix estimate of their sigma,
  and per-truncation BN statistics propagated analytically (:func:`random_state_dict`).
- Spectral norm: the power-iteration singular vectors every reference agrees on
  (:func:`converged_sn_vectors`, :func:`sn_estimate`).
"""

from __future__ import annotations

import math

import torch

from .config import BigGANDeepConfig

#: Variance of TruncNorm(-2, 2): z = psi * TruncNorm(-2, 2) has variance psi**2 * this.
_TRUNCNORM2_VAR = 1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2))

# ----------------------------------------------------------------------------- BigGAN-deep

#: Std of the raw (pre spectral norm) random weights; only their direction matters.
_SN_RAW_STD = 0.02


def _uniform(gen: torch.Generator, shape: tuple[int, ...], std: float) -> torch.Tensor:
    """Uniform(-a, a) with the given std, bit-identical on every machine: torch.rand on a
    CPU generator gives k / 2**24 exactly (Mersenne Twister bits), and ``u * 2a - a`` are
    two correctly rounded IEEE operations."""
    u = torch.rand(shape, generator=gen, dtype=torch.float32)
    a = std * math.sqrt(3.0)
    return u.mul_(2.0 * a).sub_(a)


def sn_param_names(config: BigGANDeepConfig) -> list[str]:
    """Internal names of the weights that carry spectral norm in the HF layout."""
    names = ["generator.gen_z.weight", "generator.conv_to_rgb.weight"]
    for i, layer in enumerate(layer_kinds(config)):
        p = f"generator.layers.{i}"
        if layer == "attn":
            names += [f"{p}.snconv1x1_{n}.weight" for n in ("theta", "phi", "g", "o_conv")]
        else:
            for j in range(4):
                names += [f"{p}.bn_{j}.scale.weight", f"{p}.bn_{j}.offset.weight", f"{p}.conv_{j}.weight"]
    return names


def layer_kinds(config: BigGANDeepConfig) -> list[str]:
    kinds = []
    for i in range(len(config.layers)):
        if i == config.attention_layer_position:
            kinds.append("attn")
        kinds.append("block")
    return kinds


def raw_random_weights(config: BigGANDeepConfig, seed: int,
                       shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Seeded raw parameters (internal names, no BN statistics). Spectral-norm weights are
    *raw* (not yet divided by sigma); the rest are final. ``shapes``: the internal names and
    shapes (:func:`bigganctl.models.biggan_deep.state_shapes`)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    sn = set(sn_param_names(config))
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():          # fixed (module) order -> fixed draws
        if name.endswith(("running_means", "running_vars")):
            continue
        if name in sn:
            out[name] = _uniform(gen, shape, _SN_RAW_STD)
        elif name == "embeddings.weight":
            out[name] = _uniform(gen, shape, 0.5)
        elif name.endswith("gamma"):
            out[name] = 0.2 + _uniform(gen, shape, 0.05)
        elif name == "generator.bn.weight":
            out[name] = 1.0 + _uniform(gen, shape, 0.05)
        elif name.endswith("bias"):
            out[name] = _uniform(gen, shape, 0.05)
        else:  # pragma: no cover - every parameter is covered above
            raise AssertionError(f"no init rule for {name}")
    return out


def _rmt_sigma(w: torch.Tensor) -> float:
    """Largest singular value of an iid zero-mean [m, n] matrix drawn with std
    ``_SN_RAW_STD``: about std * (sqrt(m) + sqrt(n)). From the shape only: deterministic."""
    return _SN_RAW_STD * (math.sqrt(w.shape[0]) + math.sqrt(w[0].numel()))


def random_state_dict(config: BigGANDeepConfig, seed: int,
                      shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A complete, sane internal state dict: spectral-norm weights divided by the
    random-matrix estimate of their sigma (from the shape: fast and exact), BN statistics
    from :func:`analytic_bn_stats`."""
    state = raw_random_weights(config, seed, shapes)
    for name in sn_param_names(config):
        state[name].div_(_rmt_sigma(state[name]))
    state.update(analytic_bn_stats(config, state))
    return state




def _moments(w: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum, sum of squares)`` of ``scale * w`` over the kernel taps, float64 [out, in].
    (Squares in the weight's dtype, sums in float64: a few large ops, no float64 copy.)"""
    w3 = w.reshape(w.shape[0], w.shape[1], -1)
    s = w3.sum(2, dtype=torch.float64)
    q = w3.square().sum(2, dtype=torch.float64)
    return s.mul_(scale), q.mul_(scale * scale)


def analytic_bn_stats(config: BigGANDeepConfig, w: dict[str, torch.Tensor],
                      sn_scale: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Per-truncation BN statistics that match the activations the weights produce.

    ``w``: internal-layout weights; a spectral-norm weight is used as
    ``w[name] * sn_scale[name]`` (1 / sigma, default 1: already folded). Activations are
    propagated layer by layer as per-channel (mean, variance) in float64 under an
    independence approximation. Row t is psi = t / (n_stats - 1) with
    z = psi * TruncNorm(-2, 2) and a uniformly random class. Returns running_means and
    running_vars for every batch norm (internal names, float32, variances positive)."""
    sn_scale = sn_scale or {}
    T = config.n_stats

    def d(k):
        return w[k].double()

    psi = torch.linspace(0.0, 1.0, T, dtype=torch.float64)[:, None]
    emb = d("embeddings.weight")                          # [z_dim, classes]
    c_mean = torch.cat([torch.zeros(config.z_dim, dtype=torch.float64), emb.mean(1)])
    c_var = torch.cat([(psi ** 2 * _TRUNCNORM2_VAR).expand(-1, config.z_dim),
                       emb.var(1, unbiased=False).expand(T, -1)], dim=1)   # [T, 2 z_dim]

    def lin(mu, var, name, bias=None):
        """Per-channel mean / variance after a linear map or conv (taps summed)."""
        s, q = _moments(w[name], sn_scale.get(name, 1.0))
        mu_o = mu @ s.T
        var_o = var @ q.T
        return (mu_o + d(bias) if bias is not None else mu_o), var_o

    def bn_relu(prefix):
        """Normalised input (0, 1) -> (1 + s) x + o -> ReLU; s, o linear in the condition."""
        if prefix == "generator.bn":
            g, b = d(f"{prefix}.weight"), d(f"{prefix}.bias")
            m, v = b.expand(T, -1), (g ** 2).expand(T, -1)
        else:
            s_mu, s_var = lin(c_mean, c_var, f"{prefix}.scale.weight")
            o_mu, o_var = lin(c_mean, c_var, f"{prefix}.offset.weight")
            m = o_mu.expand(T, -1)
            v = (1 + s_mu) ** 2 + s_var + o_var
        sd = v.sqrt()
        a = m / sd
        cdf, pdf = torch.special.ndtr(a), torch.exp(-0.5 * a ** 2) / math.sqrt(2 * math.pi)
        e1 = m * cdf + sd * pdf
        e2 = (m ** 2 + v) * cdf + m * sd * pdf
        return e1, (e2 - e1 ** 2).clamp_min(1e-12)

    out: dict[str, torch.Tensor] = {}

    def record(prefix, mu, var):
        out[f"{prefix}.running_means"] = mu.float().contiguous()
        out[f"{prefix}.running_vars"] = var.clamp_min(1e-6).float().contiguous()

    # gen_z: [T, 16 * 16ch], NHWC -> per-channel mixture over the 16 positions.
    ch16 = 16 * config.channel_width
    mu_j, var_j = lin(c_mean, c_var, "generator.gen_z.weight", "generator.gen_z.bias")
    mu_pos = mu_j.view(16, ch16)                           # the same for every row
    mu = mu_pos.mean(0).expand(T, -1)
    var = (var_j.view(-1, 16, ch16) + mu_pos ** 2).mean(1) - mu ** 2
    for i, kind in enumerate(layer_kinds(config)):
        p = f"generator.layers.{i}"
        if kind == "attn":
            g_mu, g_var = lin(mu, var, f"{p}.snconv1x1_g.weight")
            pooled_mu = g_mu + 1.0294 * g_var.sqrt()      # E[max of 4 normals]
            pooled_var = 0.05 * g_var                     # softmax averaging shrinks it
            o_mu, o_var = lin(pooled_mu, pooled_var, f"{p}.snconv1x1_o_conv.weight")
            gamma = float(w[f"{p}.gamma"])
            mu, var = mu + gamma * o_mu, var + gamma ** 2 * o_var
            continue
        x_mu, x_var = mu, var
        h_mu, h_var = mu, var
        for j in range(4):
            record(f"{p}.bn_{j}", h_mu, h_var)
            r_mu, r_var = bn_relu(f"{p}.bn_{j}")
            h_mu, h_var = lin(r_mu, r_var, f"{p}.conv_{j}.weight", f"{p}.conv_{j}.bias")
        out_c = h_mu.shape[1]
        mu, var = h_mu + x_mu[:, :out_c], h_var + x_var[:, :out_c]
    record("generator.bn", mu, var)
    return out


# ----------------------------------------------------------------------------- spectral norm

def converged_sn_vectors(weight: torch.Tensor, n_iter: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular-vector estimates (u, v) after ``n_iter`` power iterations from a fixed
    start, as a trained model's spectral norm would store them. Deterministic, fast (no
    SVD of large conv weights) and sane: ``u . W v`` is positive and close to sigma_max.
    Used to write random checkpoints in the real formats."""
    w_mat = weight.double().reshape(weight.shape[0], -1)
    v = torch.ones(w_mat.shape[1], dtype=torch.float64) / w_mat.shape[1] ** 0.5
    u = w_mat @ v
    for _ in range(n_iter):
        u = w_mat @ v
        u = u / u.norm()
        v = w_mat.T @ u
        v = v / v.norm()
    return u.to(weight.dtype), v.to(weight.dtype)


#: Power iterations behind the spectral norm of random weights (random_init_) and behind
#: the singular vectors the format writers store.
SN_INIT_ITERS = 10


def sn_estimate(w_mat: torch.Tensor, n_iter: int = SN_INIT_ITERS):
    """Power-iteration singular vectors of a 2-d weight that every reference's eval-mode
    sigma agrees on, in float64: ``(u0, u, v, sigma)`` with ``(u0, v)`` from
    :func:`converged_sn_vectors` (so ``v = normalize(W^T u0)``),
    ``sigma = |W v|`` and ``u = W v / sigma``.

    torch-style spectral norm with the stored (u, v) gives ``u . (W v) = sigma``; ajbrock's
    one power iteration from ``u0`` gives ``v``, then ``u``, then the same sigma.
    """
    w = w_mat.double()
    u0, v = converged_sn_vectors(w, n_iter=n_iter)
    wv = w @ v
    sigma = wv.norm()
    return u0, wv / sigma, v, float(sigma)


def spectrally_normalised(w: torch.Tensor, n_iter: int = SN_INIT_ITERS) -> torch.Tensor:
    """``w / sigma`` with sigma from :func:`sn_estimate` of ``w`` flattened to (out, -1)."""
    return w / sn_estimate(w.reshape(w.shape[0], -1), n_iter)[3]
