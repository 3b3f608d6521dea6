"""bnbackprop: the library behind *Backprop through batch norm, in matrix form*.

Modules, one idea each:

* :mod:`bnbackprop.batchnorm` — forward pass, exact backward pass, ``BatchNorm`` layer.
* :mod:`bnbackprop.loops` — the same, activation by activation, as an independent reference.
* :mod:`bnbackprop.stepwise` — the nine-step computation graph, forward and backward.
* :mod:`bnbackprop.gradcheck` — central finite differences and relative errors.
* :mod:`bnbackprop.symbolic` — SymPy matrices of symbols, element-wise derivatives, proofs.
* :mod:`bnbackprop.canon` — Ioffe & Szegedy's, CS231n's and makemore's backward passes, transcribed.
* :mod:`bnbackprop.figures` — the computation-graph figure, drawn from the nine steps.
* :mod:`bnbackprop.batchnorm_as_published` — the sources' batch-norm formulas as printed, kept to be judged.
* :mod:`bnbackprop.matcalc` — vec, commutation matrices, Kronecker and Hadamard Jacobians.
* :mod:`bnbackprop.layers` and :mod:`bnbackprop.losses` — linear layers, activations, squared error.
* :mod:`bnbackprop.question_network` — the Cross Validated question's network and its data.
* :mod:`bnbackprop.question_as_published` — the question's and the answer's code, bugs included.
* :mod:`bnbackprop.bias_example` — the Ioffe–Szegedy bias example.
* :mod:`bnbackprop.optim` — SGD, AdaGrad, RMSprop, Adadelta, Adam.
* :mod:`bnbackprop.optim_as_published` — the sources' optimizer rules as printed.
"""

__version__ = "0.1.0"
