"""The lecture's math, run faster or rewritten for inference.

Nothing here changes what a network computes; each module is checked against the
top-level teaching code (:mod:`makemore.nn`, :mod:`makemore.train`) by the tests.

- :mod:`~makemore.engine.functional`  the forward pass as a pure function of tensors
- :mod:`~makemore.engine.fast`        that pass compiled and batched, for full-length runs
- :mod:`~makemore.engine.backprop`    gradients by hand, autograd's kernels to the bit
- :mod:`~makemore.engine.fold`        an eval-mode BatchNorm folded into the Linear before it
"""
