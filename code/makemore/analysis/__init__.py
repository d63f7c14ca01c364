"""Measurements: what a network, a run or a list of names says in numbers.

No figures here (those are :mod:`makemore.show`); the chapters quote these numbers.

- :mod:`~makemore.analysis.stats`     forward / backward statistics behind the diagnostic plots
- :mod:`~makemore.analysis.health`    those statistics reduced to the numbers the prose quotes
- :mod:`~makemore.analysis.params`    a network's parameters by name: gradients, fills, spread
- :mod:`~makemore.analysis.initialization`  what an init does to the first steps
- :mod:`~makemore.analysis.outcomes`  how the grid's trained runs ended: losses, divergence, cost
- :mod:`~makemore.analysis.corpus`    statistics of a list of names: lengths, letters, real or new
- :mod:`~makemore.analysis.normalization`  BatchNorm's running statistics at inference
- :mod:`~makemore.analysis.depth`     depth with and without residual blocks, per layer
- :mod:`~makemore.analysis.optimizers`  SGD against Adam: update:data and the gain sweep
"""
