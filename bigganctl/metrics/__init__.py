"""Metrics: Inception features (torch-fidelity glue), sources, streaming extraction,
FID / IS / KID maths, reference statistics and one evaluation run.

- ``features``    the ``inception-v3-compat`` extractor and where its weights come from
- ``sources``     what is evaluated: generated samples, image folders, ``.npz`` batches
- ``extract``     sources -> features -> streaming accumulators; checkpoints; torchrun
- ``maths``       pure numerical cores: streaming accumulators, Fréchet distance, IS, KID
- ``reference``   reference statistics: registry, file formats, comparability
- ``evaluation``  one evaluation from explicit inputs -> the result document; gates
- ``testing``     a random-weight Inception file for tests and benchmarks
"""
