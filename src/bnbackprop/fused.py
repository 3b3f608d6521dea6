"""A fused batch-norm kernel for NumPy arrays, compiled with Numba when it is installed.

:func:`bnbackprop.batchnorm.forward` and :func:`~bnbackprop.batchnorm.backward` use it by
default (``engine="auto"``) for NumPy float32 and float64 arrays whose batch axes are the
leading axes of a C-contiguous array (the usual N × p layout, or (N, …) with ``axis=0``) or
the trailing axes of a Fortran-contiguous one; everything else, and every call when Numba
is not installed, takes the NumPy path unchanged. ``engine="numpy"`` forces the NumPy path,
``engine="fused"`` the kernel (a ``ValueError`` says why when it cannot be used).

Why: the NumPy path makes one pass over memory per NumPy call and runs on one thread. The
kernel (``bnbackprop._fused_kernels``) shares the rows among the threads and makes two
sweeps per pass: the forward pass reads X for the statistics (in blocks of rows small enough
to stay in the core's cache, two-pass within a block, merged with Chan's update), then reads
X again and writes x̂ and Y; the backward pass reads dY and x̂ for its two per-feature sums,
then again to write dX. Arrays below ``2 * MIN_CHUNK_ELEMENTS`` entries run on the calling
thread.

What it guarantees is what the NumPy path guarantees: the inputs are checked before the
kernel runs (by the NumPy path's code, or, for the common call, an N × p array in C order
with ``axis=0`` and γ, β in its dtype, by a short path of a few comparisons of types,
shapes and options), and the kernel checks the rest in the same sweep (finite sums,
statistics it can trust, finite outputs: a non-finite γ or β makes its whole column of Y
non-finite). Where it cannot give the exact answer (features
near the float limits or constant up to rounding, zero variance with ε = 0, non-finite
input, overflowing outputs) it hands the whole call to the NumPy path, which handles the
case or raises its clear error. Exactly constant features (a dead unit) stay in the kernel:
mean = that value, variance 0, x̂ = 0. Results agree with the NumPy path to a few units in
the last place: same formulas, sums accumulated in float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np

ENGINES = ("auto", "numpy", "fused")

#: Bytes of X per block of rows, so that a block's statistics are computed while it stays in the core's cache.
BLOCK_BYTES = 128 * 1024
#: Entries per thread at least; smaller arrays run on one thread, where starting threads costs more than it saves.
MIN_CHUNK_ELEMENTS = 2**17


@functools.cache
def available() -> bool:
    """Whether Numba imports, so that the fused kernel can run (an installed Numba that refuses
    this NumPy version counts as missing)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _kernels():
    from bnbackprop import _fused_kernels

    return _fused_kernels


def _threads() -> int:
    import numba

    return numba.get_num_threads()


#: (smallest normal, machine epsilon, largest finite number) of the dtypes the kernel computes in
_LIMITS = {np.dtype(t): (float(np.finfo(t).smallest_normal), float(np.finfo(t).eps), float(np.finfo(t).max))
           for t in (np.float32, np.float64)}


def _layout(n: int, p: int, itemsize: int) -> tuple[int, int]:
    """(chunks, block): chunks of consecutive rows, one per thread when the array is large
    enough (one chunk runs the serial kernel); blocks of rows of about ``BLOCK_BYTES``."""
    block = max(1, BLOCK_BYTES // (p * itemsize))
    if n * p < 2 * MIN_CHUNK_ELEMENTS:
        return 1, block
    return max(1, min(_threads(), (n * p) // MIN_CHUNK_ELEMENTS, n)), block


def _as_rows(A: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, bool] | None:
    """A 2-D (N, p) C-contiguous view of A with the batch in rows, and whether it is A's transpose.

    None when A's layout does not give one without a copy.
    """
    ndim = A.ndim
    k = len(axes)
    n = math.prod(A.shape[a] for a in axes)
    if axes == tuple(range(k)) and A.flags.c_contiguous:
        return A.reshape(n, -1), False
    if axes == tuple(range(ndim - k, ndim)) and A.flags.f_contiguous:
        return A.T.reshape(n, -1), True
    return None


def _unsupported(X: object, axes: tuple[int, ...]) -> str | None:
    """Why the kernel cannot take X (None when it can)."""
    if not available():
        return "Numba is not installed or does not import (pip install numba)"
    if not isinstance(X, np.ndarray):
        return f"it takes NumPy arrays, not {type(X).__module__}.{type(X).__name__}"
    if X.size == 0:
        return "X has no entries"
    if X.dtype not in (np.float32, np.float64):
        return f"it computes in float32 and float64, not {X.dtype} (the NumPy path computes float16 in float32)"
    if _as_rows(X, axes) is None:
        return (f"it needs the batch axes {axes} to be the leading axes of a C-contiguous array or the "
                f"trailing axes of a Fortran-contiguous one (X has shape {X.shape}, strides {X.strides})")
    return None


def _use_kernel(engine: str, X: object, axes: tuple[int, ...]) -> bool:
    """Whether to run the kernel on X for ``engine`` (checked by the caller); ``"fused"`` raises
    ``ValueError`` saying why when the kernel cannot take X."""
    if engine == "numpy":
        return False
    why = _unsupported(X, axes)
    if why is not None and engine == "fused":
        raise ValueError(f"engine='fused' cannot run: {why}; use engine='auto' or 'numpy'")
    return why is None


def _forward(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, axes: tuple[int, ...], ddof: int, eps: float,
            eps_placement: str):
    """Y, x̂ and the statistics (mean, var, σ, 1/denominator, one entry per feature), or None
    when the NumPy path must do it. The arguments were checked by the caller; X is one that
    :func:`_use_kernel` accepted, ``gamma`` and ``beta`` are per-feature arrays of X's dtype."""
    rows, transposed = _as_rows(X, axes)
    n, p = rows.shape
    dtype = X.dtype
    tiny, rounding, largest = _LIMITS[dtype]
    chunks, block = _layout(n, p, dtype.itemsize)
    # the per-feature vectors in the order of the columns of ``rows``
    gamma_rows = np.ascontiguousarray(gamma.T if transposed else gamma).reshape(p)
    beta_rows = np.ascontiguousarray(beta.T if transposed else beta).reshape(p)
    xhat = np.empty_like(rows)
    Y = np.empty_like(rows)
    stats = np.empty((4, p))
    kernels = _kernels()
    problems = (kernels.forward_rows if chunks > 1 else kernels.forward_rows_serial)(
        rows, gamma_rows, beta_rows, chunks, block, ddof, float(eps), eps_placement == "inside",
        tiny, rounding, largest, xhat, Y, stats,
    )
    if problems:
        return None
    features = gamma.shape
    if transposed:
        xhat, Y = xhat.reshape(X.T.shape).T, Y.reshape(X.T.shape).T
        vectors = [s.reshape(features[::-1]).T for s in stats]
    else:
        xhat, Y = xhat.reshape(X.shape), Y.reshape(X.shape)
        vectors = [s.reshape(features) for s in stats]
    mean, var, sigma, inv_denom = (v.astype(dtype) for v in vectors)
    return Y, xhat, mean, var, sigma, inv_denom


def _backward(dY: np.ndarray, cache, engine: str):
    """(dX, dγ, dβ) from the kernel, or None when the NumPy path must do it. ``dY`` was checked
    by the caller (a NumPy array of X's shape); with ``engine="fused"`` a cache or dY the kernel
    cannot take raises ``ValueError`` saying why."""
    xhat = cache.xhat
    why = None
    if not cache.batch_stats:
        why = "it computes the training-mode gradient; this cache holds fixed statistics (inference)"
    elif cache.dtype is not None and cache.dtype != xhat.dtype:
        why = f"X was {cache.dtype}, which the NumPy path computes in {xhat.dtype}"
    elif dY.dtype != xhat.dtype:
        why = f"dY is {dY.dtype} and X was {xhat.dtype}; pass dY in X's dtype"
    else:
        why = _unsupported(xhat, cache.axis)
    if why is None:
        rows, transposed = _as_rows(xhat, cache.axis)
        dY_layout = _as_rows(dY, cache.axis)
        if dY_layout is None or dY_layout[1] != transposed:
            why = "dY's memory layout differs from X's (make it contiguous like X)"
    if why is not None:
        if engine == "fused":
            raise ValueError(f"engine='fused' cannot run: {why}; use engine='auto' or 'numpy'")
        return None
    dY_rows = dY_layout[0]
    p = rows.shape[1]
    dtype = xhat.dtype

    def in_rows(vector):
        return np.ascontiguousarray(vector.T if transposed else vector, dtype=dtype).reshape(p)

    result = _run_backward(dY_rows, rows, in_rows(cache.gamma), in_rows(cache.inv_denom), in_rows(cache.kappa),
                           cache.ddof)
    if result is None:
        return None
    dX, sums = result
    features = cache.gamma.shape
    if transposed:
        dX = dX.reshape(xhat.T.shape).T
        dbeta, dgamma = (s.reshape(features[::-1]).T for s in sums)
    else:
        dX = dX.reshape(xhat.shape)
        dbeta, dgamma = (s.reshape(features) for s in sums)
    return dX, dgamma.copy(), dbeta.copy()


def _backward_fast(dY: object, cache):
    """(dX, dγ, dβ) for the common call: a training-mode cache of an N × p C-contiguous array
    with ``axis=0`` and a ``dY`` of its dtype, shape and layout go straight to the kernel, with
    checks that cost a microsecond or two. None when the call is not such a one, False when
    the kernel found a problem (non-finite dY, overflowing sums or dX); in both cases the full
    path of :func:`bnbackprop.batchnorm.backward` takes over (without running the kernel again
    after a problem), which checks every argument and raises its clear errors."""
    xhat = cache.xhat
    if not (type(dY) is np.ndarray and type(xhat) is np.ndarray and cache.batch_stats is True
            and type(cache.axis) is tuple and cache.axis == (0,)
            and xhat.ndim == 2 and dY.shape == xhat.shape and xhat.flags.c_contiguous and dY.flags.c_contiguous):
        return None
    dtype = xhat.dtype
    n, p = xhat.shape
    vectors = (cache.gamma, cache.inv_denom, cache.kappa)
    if not (dtype in _LIMITS and dY.dtype == dtype and cache.dtype == dtype and p > 0
            and type(cache.ddof) is int and n > cache.ddof and available()
            and all(type(v) is np.ndarray and v.dtype == dtype and v.shape == (p,) and v.flags.c_contiguous
                    for v in vectors)):
        return None
    result = _run_backward(dY, xhat, *vectors, cache.ddof)
    if result is None:
        return False
    dX, sums = result
    return dX, sums[1].copy(), sums[0].copy()


def _run_backward(dY_rows, rows, gamma, inv_denom, kappa, ddof):
    """The backward kernel on (N, p) C-contiguous rows and per-feature vectors of their dtype:
    (dX, sums) with sums = [dβ, dγ], or None when the kernel found a problem."""
    n, p = rows.shape
    dtype = rows.dtype
    dX = np.empty_like(rows)
    sums = np.empty((2, p), dtype=dtype)
    chunks, _ = _layout(n, p, dtype.itemsize)
    kernels = _kernels()
    problems = (kernels.backward_rows if chunks > 1 else kernels.backward_rows_serial)(
        dY_rows, rows, gamma, inv_denom, kappa, chunks, n - ddof, _LIMITS[dtype][2], dX, sums,
    )
    return None if problems else (dX, sums)
