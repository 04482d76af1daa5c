"""Weights: a model name, folder or file -> a verified file on disk -> a loaded generator.

``registry`` (what can be fetched) -> ``hub`` (cache, download via ``download``, sha256 via
``checksums``) -> ``formats`` (foreign checkpoints -> bigganctl's state dict) -> ``loader``
(the generator on a device and dtype, with ``foldcache`` for folded weights).
"""
