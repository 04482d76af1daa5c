"""Files in the real formats with random weights, for tests and benchmarks (yours too).

Nothing here is needed to load a model: :mod:`bigganctl.weights.loader` and the format readers
never import this package.

- :mod:`bigganctl.testing.hf`: Hugging Face BigGAN-deep folders (``write_checkpoint``,
  ``write_random_checkpoint``, ``random_hf_state_dict``);
- :mod:`bigganctl.testing.ajbrock`, :mod:`~bigganctl.testing.ivclab`,
  :mod:`~bigganctl.testing.tutorial`: BigGAN files in each author's layout
  (``from_internal``, ``write_random_checkpoint``);
- :mod:`bigganctl.testing.inception`: a random-weight ``inception-v3-compat`` file
  (``write_random_inception``) to pass as ``--inception-weights``.

Example::

    from bigganctl.models.config import DEEP_CONFIGS
    from bigganctl.testing import hf

    folder = hf.write_random_checkpoint("tiny-deep", DEEP_CONFIGS[128], seed=0)
    # bigganctl sample --weights tiny-deep --model biggan-deep-128 ...
"""
