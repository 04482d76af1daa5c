"""Checkpoint format adapters: foreign files -> (config, state dict in bigganctl's layout).

One module per format (``hf``, ``ajbrock``, ``ivclab``, ``tutorial``); shared, loud
helpers in :mod:`bigganctl.weights.formats.checkpoint`.
"""
