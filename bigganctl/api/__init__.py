"""The public operations, each a short function over the core (what notebooks import).

- ``sample``    classes x seeds -> uint8 images + a manifest (and the files ``sample`` writes)
- ``evaluate``  FID / IS / KID of a generator or of images
- ``sweep``     the truncation trade-off over a psi grid (resumable)
- ``interp``    class-interpolation videos
- ``bench``     generation throughput
- ``stats``     reference statistics of real images (``compute_stats``)
- ``_shared``   the one model-resolution path of the operations (``open_generator``)

The package ``bigganctl`` re-exports the stable names (``bigganctl.sample``, ...).
"""
