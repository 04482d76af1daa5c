"""Metrics: Inception features (torch-fidelity glue), streaming statistics, FID / IS / KID,
reference statistics and the evaluation driver.

- ``features``   the ``inception-v3-compat`` extractor and where its weights come from
- ``stats``      pure numerical cores: streaming accumulators, Fréchet distance, IS, KID
- ``images``     image folders and ``.npz`` batches -> uint8 NCHW batches
- ``reference``  reference statistics: registry, file formats, ``compute_stats``
- ``evaluate``   the evaluation driver: ``evaluate(...)`` (checkpointing, torchrun)
- ``testing``    a random-weight Inception file for tests and benchmarks
"""
