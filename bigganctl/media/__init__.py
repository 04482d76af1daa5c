"""Everything written to disk from uint8 pixels, and the manifests beside it.

- ``images``    grids, image files, ADM-style ``.npz`` batches, the output plan
- ``video``     video writers (mp4 / gif / webp), frame composition, captions
- ``plot``      the sweep's plot
- ``manifest``  THE manifest builder (sample, interp, sweep) and its provenance fields
"""
