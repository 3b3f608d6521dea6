"""The compiled loops behind :mod:`bnbackprop.fused` (Numba; imported only when Numba is installed).

Each kernel works on an (N, p) C-contiguous array: N samples in rows, p features in columns,
so that every inner loop runs along a contiguous row (vectorised, and prefetched well). The
rows are shared out among the threads in ``chunks`` of consecutive rows (``prange``); each
chunk's per-feature sums are combined afterwards. Sums are accumulated in float64.

Statistics in one pass over memory: each chunk walks its rows in *blocks* small enough to
stay in the core's cache (``block`` rows); a block's mean and sum of squared deviations are
computed two-pass (corrected by the centred values' own mean) while it is in the cache, and
merged into the chunk's running statistics with Chan's update, which is as stable as the
two-pass algorithm. The forward pass so reads X from memory twice (statistics, then x̂ and Y)
and writes x̂ and Y (a third read, only when some feature's spread is within rounding of its
mean, tells an exactly constant feature, a dead unit, from one the NumPy path must handle);
the backward pass reads dY and x̂ twice (the two sums, then dX) and writes dX.

The kernels return the number of features or chunks they could not finish exactly. The
caller then recomputes with the NumPy path, which handles the case (features at the float
limits, or constant up to rounding) or raises its clear error (zero variance with ε = 0,
non-finite input, overflowing results).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


def _make(parallel: bool):
    """The kernels, compiled with ``prange`` over threads (``parallel``) or as plain serial loops.

    Small arrays take the serial ones: starting the threads costs more than it saves there, and
    on a busy machine a parallel call waits for a thread to be scheduled (milliseconds).
    """
    loop = prange if parallel else range

    @njit(parallel=parallel, cache=True, nogil=True)
    def forward_rows(X, gamma, beta, chunks, block, ddof, eps, inside, tiny, rounding, largest, xhat, Y, stats):
        """Statistics, x̂ and Y of X (N × p, C order); returns the number of problems found (0: done).

        ``stats`` (4 × p, float64) receives mean, var, σ and 1/denominator. ``tiny``, ``rounding``
        and ``largest`` are the smallest normal number, the machine epsilon and the largest finite
        number of X's dtype: a variance outside [tiny/rounding, largest] or a spread within
        rounding of the mean (unless the feature is exactly constant), a zero or subnormal
        denominator, a non-finite sum or a non-finite output count as problems.
        """
        n, p = X.shape
        per_chunk = (n + chunks - 1) // chunks
        counts = np.zeros(chunks)
        means = np.zeros((chunks, p))
        m2s = np.zeros((chunks, p))
        for c in loop(chunks):
            r0 = c * per_chunk
            r1 = min(n, r0 + per_chunk)
            mean = means[c]
            m2 = m2s[c]
            count = 0.0
            block_sum = np.empty(p)
            block_shift = np.empty(p)
            block_squares = np.empty(p)
            for b0 in range(r0, r1, block):
                b1 = min(r1, b0 + block)
                m = b1 - b0
                block_sum[:] = 0.0
                for i in range(b0, b1):
                    row = X[i]
                    for j in range(p):
                        block_sum[j] += row[j]
                for j in range(p):
                    block_sum[j] /= m  # the block's mean
                block_shift[:] = 0.0
                block_squares[:] = 0.0
                for i in range(b0, b1):  # the block is still in the cache
                    row = X[i]
                    for j in range(p):
                        d = row[j] - block_sum[j]
                        block_shift[j] += d
                        block_squares[j] += d * d
                total = count + m
                for j in range(p):
                    delta = block_shift[j] / m
                    block_mean = block_sum[j] + delta
                    block_m2 = block_squares[j] - delta * delta * m
                    step = block_mean - mean[j]  # Chan's update of the running mean and M2
                    mean[j] += step * (m / total)
                    m2[j] += block_m2 + step * step * (count * m / total)
                count = total
            counts[c] = count

        scale = np.empty(p, X.dtype)
        centre = np.empty(p, X.dtype)
        merged = np.empty((3, p))  # mean, variance, σ of each feature
        suspect = np.zeros(p, np.bool_)
        problems = 0
        for j in range(p):  # per feature: cheap, and one barrier fewer for the threads
            # merge the chunks: mean about the first estimate c, corrected by Σ n_k (mean_k - c)
            first = 0.0
            for c in range(chunks):
                first += counts[c] * means[c, j]
            first /= n
            s1 = 0.0
            s2 = 0.0
            m2 = 0.0
            for c in range(chunks):
                if counts[c] > 0:
                    d = means[c, j] - first
                    s1 += counts[c] * d
                    s2 += counts[c] * d * d
                    m2 += m2s[c, j]
            m = first + s1 / n
            v = max((m2 + s2 - s1 * s1 / n) / (n - ddof), 0.0)
            s = math.sqrt(v)
            if not math.isfinite(first):
                problems += 1  # non-finite input (or a sum that overflows): the NumPy path says which
                continue
            merged[0, j] = m
            merged[1, j] = v
            merged[2, j] = s
            # a spread that cannot be trusted: a constant feature (a dead unit), whose computed
            # spread is rounding only, or one that the NumPy path must handle
            suspect[j] = not (v <= largest and v >= tiny / rounding and s > 2.0 * n * rounding * abs(m))
        if problems > 0:
            return problems
        if suspect.any():  # one more read of X, only now: which suspects are exactly constant
            varies = np.zeros(p, np.bool_)
            first_row = X[0]
            for i in range(1, n):
                row = X[i]
                for j in range(p):
                    varies[j] |= row[j] != first_row[j]
            for j in range(p):
                if suspect[j]:
                    if varies[j]:
                        problems += 1
                    else:  # constant: mean is that value exactly, σ = 0, x̂ = 0
                        merged[0, j] = first_row[j]
                        merged[1, j] = 0.0
                        merged[2, j] = 0.0
            if problems > 0:
                return problems
        for j in range(p):
            m = merged[0, j]
            v = merged[1, j]
            s = merged[2, j]
            constant = suspect[j]
            denominator = math.sqrt(v + eps) if inside else s + eps
            if not (denominator > 0.0 and 1.0 / denominator <= largest):
                problems += 1
                continue
            stats[0, j] = m
            stats[1, j] = v
            stats[2, j] = s
            stats[3, j] = 1.0 / denominator
            centre[j] = m
            scale[j] = 0.0 if constant else 1.0 / denominator
        if problems > 0:
            return problems

        for c in loop(chunks):
            r0 = c * per_chunk
            r1 = min(n, r0 + per_chunk)
            check = np.zeros(p, X.dtype)  # stays 0 unless some y is inf or NaN (then y - y is NaN)
            for i in range(r0, r1):
                row = X[i]
                row_xhat = xhat[i]
                row_y = Y[i]
                for j in range(p):
                    h = (row[j] - centre[j]) * scale[j]
                    y = h * gamma[j] + beta[j]
                    row_xhat[j] = h
                    row_y[j] = y
                    check[j] += y - y
            for j in range(p):
                if check[j] != 0:
                    problems += 1
                    break
        return problems


    @njit(parallel=parallel, cache=True, nogil=True)
    def backward_rows(dY, xhat, gamma, inv_denom, kappa, chunks, n_minus_ddof, largest, dX, sums):
        """dβ = Σ dY, dγ = Σ dY ⊙ x̂ and dX = γ/denominator ⊙ (dY - dβ/N - κ x̂ dγ/(N - ddof)).

        ``sums`` (2 × p, X's dtype) receives dβ and dγ. Returns the number of problems (a sum
        beyond ``largest``, the dtype's largest number, γ/denominator or a dX that is not
        finite); 0 when done.
        """
        n, p = dY.shape
        per_chunk = (n + chunks - 1) // chunks
        partial_dy = np.zeros((chunks, p))
        partial_dy_xhat = np.zeros((chunks, p))
        for c in loop(chunks):
            r0 = c * per_chunk
            r1 = min(n, r0 + per_chunk)
            sum_dy = partial_dy[c]
            sum_dy_xhat = partial_dy_xhat[c]
            for i in range(r0, r1):
                row_dy = dY[i]
                row_xhat = xhat[i]
                for j in range(p):
                    g = row_dy[j]
                    sum_dy[j] += g
                    sum_dy_xhat[j] += g * row_xhat[j]
        slope = np.empty(p, dY.dtype)
        offset = np.empty(p, dY.dtype)
        scale = np.empty(p, dY.dtype)
        problems = 0
        for j in range(p):  # per feature: cheap, and one barrier fewer for the threads
            total_dy = 0.0
            total_dy_xhat = 0.0
            for c in range(chunks):
                total_dy += partial_dy[c, j]
                total_dy_xhat += partial_dy_xhat[c, j]
            scale[j] = gamma[j] * inv_denom[j]
            if not (abs(total_dy) <= largest and abs(total_dy_xhat) <= largest and math.isfinite(scale[j])):
                problems += 1
                continue
            sums[0, j] = total_dy  # rounded to the dtype here, as the NumPy path has them
            sums[1, j] = total_dy_xhat
            slope[j] = sums[1, j] * (kappa[j] / -n_minus_ddof)
            offset[j] = sums[0, j] / n
        if problems > 0:
            return problems
        for c in loop(chunks):
            r0 = c * per_chunk
            r1 = min(n, r0 + per_chunk)
            check = np.zeros(p, dY.dtype)
            for i in range(r0, r1):
                row_dy = dY[i]
                row_xhat = xhat[i]
                row_dx = dX[i]
                for j in range(p):
                    d = ((row_xhat[j] * slope[j] + row_dy[j]) - offset[j]) * scale[j]
                    row_dx[j] = d
                    check[j] += d - d
            for j in range(p):
                if check[j] != 0:
                    problems += 1
                    break
        return problems

    return forward_rows, backward_rows


forward_rows, backward_rows = _make(parallel=True)
forward_rows_serial, backward_rows_serial = _make(parallel=False)
