"""bnbackprop: the library behind *Backprop through batch norm, in matrix form*.

Modules, one idea each:

* :mod:`bnbackprop.batchnorm` — forward pass, exact backward pass, ``BatchNorm`` layer.
* :mod:`bnbackprop.loops` — the same, activation by activation, as an independent reference.
* :mod:`bnbackprop.stepwise` — the nine-step computation graph, forward and backward.
* :mod:`bnbackprop.gradcheck` — central finite differences and relative errors.
* :mod:`bnbackprop.symbolic` — SymPy matrices of symbols, element-wise derivatives, proofs.
* :mod:`bnbackprop.batchnorm_as_published` — the sources' batch-norm formulas as printed, kept to be judged.
"""

__version__ = "0.1.0"
