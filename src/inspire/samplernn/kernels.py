"""Compiled kernels that generate a few streams of a SampleRNN with no per-sample Python.

What `FastStepper.step` + `sample_logits` do for one sample, as loops over weights laid out
once (by `inspire.samplernn.engine.Layout`) in two flat arrays: `wf` (float32: fp32 matrices,
biases, per-column int8 scales, the tap table) and `wq` (int8 matrices). A table `mat` says
where each matrix lives: one row per matrix, columns OFF..BOFF below. The layout of LPCNet's
`nnet.c` (`sgemv_accum`, `compute_gru`): one loop per layer, no framework between samples.

Every fp32 product is written as an AXPY over the output (y[j] += W[i, j] * x[i], i in order),
so the compiler vectorises across outputs without reordering any sum; int8 layers are integer
dot products, exact in any order. So the arithmetic is the same on every machine and SIMD width
(no fast-math), a stream's result does not depend on how many streams run beside it, and a
take replays sample for sample. Hand-written because no library offers a batch-1 recurrent
sampler without per-call dispatch (PyTorch costs ~5 us per op, and a sample needs a dozen).

No torch here; numba is imported by whoever imports this module (the engine does it lazily).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Columns of the matrix table: float offset, rows (inputs), cols (outputs), int8 offset (-1: fp32),
# offset of the per-column int8 scales in wf, offset of the bias in wf.
OFF, ROWS, COLS, QOFF, SOFF, BOFF = range(6)
# Entries of `dims`.
D_TIERS, D_LAYERS, D_LSTM, D_DIM, D_LEVELS, D_TAPS, D_LOOKBACK, D_TAPS_Q, D_TAPS_SCALE = range(9)
# (D_TAPS: the fp32 tap table's offset in wf, or -1 when it is int8: at D_TAPS_Q in wq, one scale
# per row at D_TAPS_SCALE in wf.)

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_F2 = np.float32(2.0)
_HALF = np.float32(0.5)
# exp(x) as Cephes' expf: 2^n times a degree-5 polynomial on [-ln2/2, ln2/2] (relative error
# < 1e-7). Written out because libm's expf is one scalar call per class, the largest cost of a
# draw; this one vectorises, and is the same IEEE arithmetic on every machine.
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)
_EXP_P = (np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3),
          np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1))
_EXP_LO = np.float32(-87.0)  # exp below this is under 1.7e-38: nothing next to a total >= 1
_EXP_HI = np.float32(88.0)  # exp above this overflows float32


@njit(cache=True, nogil=True)
def affine(wf, wq, mat, m, x, y, nb):
    """y[b, :cols] = x[b, :rows] @ W + bias for b < nb (W is matrix m of the table)."""
    if mat[m, QOFF] >= 0:
        affine_int8(wf, wq, mat, m, x, y, nb)
        return
    off, rows, cols, boff = mat[m, OFF], mat[m, ROWS], mat[m, COLS], mat[m, BOFF]
    w = wf[off : off + rows * cols].reshape((rows, cols))  # (in, out)
    main = rows - rows % 4
    for b in range(nb):
        yb = y[b]
        for j in range(cols):
            yb[j] = _F0
    for i in range(0, main, 4):
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        for b in range(nb):
            yb, xb = y[b], x[b]
            x0, x1, x2, x3 = xb[i], xb[i + 1], xb[i + 2], xb[i + 3]
            for j in range(cols):
                yb[j] = yb[j] + w0[j] * x0 + w1[j] * x1 + w2[j] * x2 + w3[j] * x3
    for i in range(main, rows):
        wi = w[i]
        for b in range(nb):
            yb, xi = y[b], x[b, i]
            for j in range(cols):
                yb[j] = yb[j] + wi[j] * xi
    for b in range(nb):
        yb = y[b]
        for j in range(cols):
            yb[j] = yb[j] + wf[boff + j]


@njit(cache=True, nogil=True, fastmath={"nnan"})
def _abs_max(x, n):
    top = _F0
    for i in range(n):
        top = max(top, abs(x[i]))
    return top


@njit(cache=True, nogil=True)
def affine_int8(wf, wq, mat, m, x, y, nb):
    """The int8 layer: weights int8 (out, in) with a scale per output; each input vector is
    quantized to int16 with its own scale (so a sum of 2 x rows products fits in int32), then
    integer dot products (exact in any order: the compiler vectorises them to pmaddwd/vpdpwssd
    and the result is the same on every machine), then y = acc * (sx * sw[j]) + bias[j]."""
    rows, cols, qoff, soff, boff = mat[m, ROWS], mat[m, COLS], mat[m, QOFF], mat[m, SOFF], mat[m, BOFF]
    q = wq[qoff : qoff + rows * cols].reshape((cols, rows))  # (out, in)
    limit = min(32767, (2**31 - 1) // (127 * rows))  # no sum of rows products can overflow int32
    xq = np.empty((nb, rows), np.int16)
    sx = np.empty(nb, np.float32)
    for b in range(nb):
        xb = x[b]
        top = _abs_max(xb, rows)
        inv = np.float32(limit) / top if top > _F0 else _F0
        for i in range(rows):
            xq[b, i] = np.int16(np.floor(xb[i] * inv + _HALF))
        sx[b] = top / np.float32(limit)
    for j in range(cols):  # each weight row once, for every stream
        qj = q[j]
        sj, bj = wf[soff + j], wf[boff + j]
        for b in range(nb):
            xb = xq[b]
            acc = np.int32(0)
            for i in range(rows):
                acc = np.int32(acc + np.int32(qj[i]) * np.int32(xb[i]))
            y[b, j] = np.float32(acc) * (sx[b] * sj) + bj


@njit(cache=True, nogil=True)
def tier(k, s, t, buf, hidden, conds, labels, wf, wq, mat, frames, ratios, dims, upsample, xin, x, gi, gh):
    """One frame of frame-level tier k before sample s of `buf` (stream time t): its input
    projection (+ the tier above's conditioning, + the stream's label vector), its RNN layers
    (state updated in place) and, if `upsample`, its conditioning for the tier below into
    conds[k] (B, ratio * dim)."""
    nb = buf.shape[0]
    n_tiers, layers, lstm, d = dims[D_TIERS], dims[D_LAYERS], dims[D_LSTM], dims[D_DIM]
    levels, lb = dims[D_LEVELS], dims[D_LOOKBACK]
    fk = frames[k]
    scale = np.float32(4.0 / (levels - 1))
    for b in range(nb):
        for i in range(fk):
            xin[b, i] = np.float32(buf[b, s + lb - fk + i]) * scale - _F2
    base = k * (2 + 2 * layers)
    gates = 4 if lstm else 3
    pre, ex, ex2 = np.empty(gates * d, np.float32), np.empty(gates * d, np.float32), np.empty(d, np.float32)
    bits = np.empty(gates * d, np.int32)
    affine(wf, wq, mat, base, xin, x, nb)
    if k + 1 < n_tiers:
        c = ((t // fk) % ratios[k + 1]) * d
        for b in range(nb):
            for j in range(d):
                x[b, j] = x[b, j] + conds[k + 1, b, c + j]
    if labels.shape[0]:  # a labelled model: what the stream's label (or mix of labels) adds, as model.step
        for b in range(nb):
            for j in range(d):
                x[b, j] = x[b, j] + labels[k, b, j]
    for layer in range(layers):
        h = hidden[k, layer, 0]  # (B, dim)
        affine(wf, wq, mat, base + 2 + 2 * layer, x, gi, nb)
        affine(wf, wq, mat, base + 3 + 2 * layer, h, gh, nb)
        # Gates a pass at a time so the exponentials vectorise: sigmoid(v) = 1 / (1 + exp(-v)),
        # tanh(v) = 1 - 2 / (exp(2v) + 1).
        if lstm:  # PyTorch's gate order: input, forget, cell, output
            cell = hidden[k, layer, 1]
            for b in range(nb):
                for j in range(4 * d):
                    v = gi[b, j] + gh[b, j]
                    pre[j] = _F2 * v if 2 * d <= j < 3 * d else -v
                exp_clamped(pre, ex, bits, 0, 4 * d)
                for j in range(4 * d):
                    pre[j] = _F1 - _F2 / (ex[j] + _F1) if 2 * d <= j < 3 * d else _F1 / (_F1 + ex[j])
                for j in range(d):
                    cj = pre[d + j] * cell[b, j] + pre[j] * pre[2 * d + j]
                    cell[b, j] = cj
                    ex[j] = _F2 * cj
                exp_clamped(ex, ex2, bits, 0, d)
                for j in range(d):
                    hj = pre[3 * d + j] * (_F1 - _F2 / (ex2[j] + _F1))
                    h[b, j] = hj
                    x[b, j] = hj
        else:  # GRU: r, z, n
            for b in range(nb):
                for j in range(2 * d):
                    pre[j] = -(gi[b, j] + gh[b, j])
                exp_clamped(pre, ex, bits, 0, 2 * d)
                for j in range(2 * d):
                    pre[j] = _F1 / (_F1 + ex[j])  # r, then z
                for j in range(d):
                    pre[2 * d + j] = _F2 * (gi[b, 2 * d + j] + pre[j] * gh[b, 2 * d + j])
                exp_clamped(pre, ex, bits, 2 * d, 3 * d)
                for j in range(d):
                    nn = _F1 - _F2 / (ex[2 * d + j] + _F1)
                    hj = nn + pre[d + j] * (h[b, j] - nn)
                    h[b, j] = hj
                    x[b, j] = hj
    if upsample:
        affine(wf, wq, mat, base + 1, x, conds[k], nb)


@njit(cache=True, nogil=True)
def run(n, t, buf, hidden, conds, labels, temps, unif, minp, topp, wf, wq, mat, frames, ratios, dims, forced, keep):
    """Advance every stream n samples; return the new t (samples since the frames aligned).

    buf (B, lookback + n) int64: the last `lookback` samples, then room for n more. Generation
    (forced False): sample s is drawn from softmax(logits / temps[s, b]), truncated by min-p
    minp[s, b] and top-p topp[s, b] (each an empty array when off), by inverse CDF at unif[s, b]
    and written to buf[b, lookback + s]. Teacher forcing (forced True, priming):
    buf already holds the n samples; the frame tiers run over them and the sample level is
    skipped, as `inspire.samplernn.sample.prime_state` does. hidden (tiers, layers, 1|2, B, dim)
    and conds (tiers, B, max ratio * dim) are updated in place. labels (tiers, B, dim): what each
    stream's label adds to each tier's input (a labelled model), or an empty array. keep: (n, B, levels) to receive
    every sample's logits (tests), or an empty array.
    """
    nb = buf.shape[0]
    n_tiers, layers, d = dims[D_TIERS], dims[D_LAYERS], dims[D_DIM]
    levels, taps, lb = dims[D_LEVELS], dims[D_TAPS], dims[D_LOOKBACK]
    gates = 4 if dims[D_LSTM] else 3
    taps_q, taps_scale = dims[D_TAPS_Q], dims[D_TAPS_SCALE]
    f0 = frames[0]
    xin = np.empty((nb, frames[n_tiers - 1]), np.float32)
    x = np.empty((nb, d), np.float32)
    gi = np.empty((nb, gates * d), np.float32)
    gh = np.empty((nb, gates * d), np.float32)
    a = np.empty((nb, d), np.float32)
    hid = np.empty((nb, d), np.float32)
    logits = np.empty((nb, levels), np.float32)
    cdf = np.empty(levels, np.float32)
    weights = np.empty(levels, np.float32)
    bits = np.empty(levels, np.int32)
    ranked = np.empty(levels, np.float32)
    truncating_min, truncating_top = minp.shape[0] > 0, topp.shape[0] > 0
    m_hidden = n_tiers * (2 + 2 * layers)
    for s in range(n):
        for k in range(n_tiers - 1, -1, -1):
            if t % frames[k] == 0:
                upsample = not (forced and k == 0)  # priming: the bottom tier's output feeds only the MLP
                tier(k, s, t, buf, hidden, conds, labels, wf, wq, mat, frames, ratios, dims, upsample, xin, x, gi,
                     gh)
        if forced:
            t += 1
            continue
        # Sample level: the tap table over the last f0 samples, + this position's conditioning.
        c = (t % f0) * d
        for b in range(nb):
            ab = a[b]
            for j in range(d):
                ab[j] = _F0
            for i in range(f0):
                row = i * levels + buf[b, s + lb - f0 + i]
                if taps >= 0:
                    at = taps + row * d
                    for j in range(d):
                        ab[j] = ab[j] + wf[at + j]
                else:
                    at, scale = taps_q + row * d, wf[taps_scale + row]
                    for j in range(d):
                        ab[j] = ab[j] + np.float32(wq[at + j]) * scale
            for j in range(d):
                v = ab[j] + conds[0, b, c + j]
                ab[j] = max(_F0, v)
        affine(wf, wq, mat, m_hidden, a, hid, nb)
        for b in range(nb):
            for j in range(d):
                hid[b, j] = max(hid[b, j], _F0)
        affine(wf, wq, mat, m_hidden + 1, hid, logits, nb)
        if keep.shape[0]:
            keep[s] = logits
        for b in range(nb):
            mp = minp[s, b] if truncating_min else _F0
            tp = topp[s, b] if truncating_top else _F1
            buf[b, lb + s] = draw(logits[b], temps[s, b], unif[s, b], cdf, weights, bits, mp, tp, ranked)
        t += 1
    return t


@njit(cache=True, nogil=True)
def exp_clamped(x, out, bits, lo, hi):
    """out[i] = exp(x[i]) for lo <= i < hi, x clamped to [-87, 88] (see _EXP_P); bits: int32
    scratch of x's size."""
    p0, p1, p2, p3, p4, p5 = _EXP_P
    for i in range(lo, hi):
        v = min(max(x[i], _EXP_LO), _EXP_HI)
        n = np.floor(v * _LOG2E + _HALF)
        r = v - n * _LN2_HI - n * _LN2_LO
        p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
        out[i] = p * (r * r) + r + _F1
        bits[i] = (np.int32(n) + np.int32(127)) << np.int32(23)  # 2^n as float32 bits
    scale = bits.view(np.float32)
    for i in range(lo, hi):
        out[i] = out[i] * scale[i]


@njit(cache=True, nogil=True, fastmath={"nnan"})
def _scaled_max(logits, temperature, z):
    """z = logits / temperature; returns max(z) (a max is exact in any order: vectorised)."""
    top = logits[0] / temperature
    for q in range(logits.shape[0]):
        v = logits[q] / temperature
        z[q] = v
        top = max(top, v)
    return top


@njit(cache=True, nogil=True)
def draw(logits, temperature, u, cdf, weights, bits, min_p, top_p, ranked):
    """Inverse-CDF draw from softmax(logits / temperature) at uniform u in [0, 1), truncated by
    min_p (0: off) and top_p (1: off): the first class whose cumulative kept weight exceeds u
    times the total kept (`sample_logits`' rule, steps 1-4, on the unnormalised weights
    exp(z - max z), whose largest is exactly 1). cdf, weights, ranked (float32) and bits (int32):
    scratch of the logits' size."""
    levels = logits.shape[0]
    top = _scaled_max(logits, temperature, cdf)
    for q in range(levels):
        cdf[q] = cdf[q] - top
    exp_clamped(cdf, weights, bits, 0, levels)
    if min_p > _F0:  # keep w_i >= min_p * max w
        largest = _F0
        for q in range(levels):
            largest = max(largest, weights[q])
        floor = min_p * largest
        for q in range(levels):
            if weights[q] < floor:
                weights[q] = _F0
    if top_p < _F1:  # keep the most likely classes until the mass before one reaches top_p of all
        for q in range(levels):
            ranked[q] = weights[q]
        ranked.sort()  # ascending: the most likely last
        grand = _F0
        for k in range(levels - 1, -1, -1):
            grand = grand + ranked[k]
        bound = top_p * grand
        before, last = _F0, ranked[levels - 1]
        for k in range(levels - 1, -1, -1):
            if not before < bound:
                break
            last = ranked[k]
            before = before + ranked[k]
        for q in range(levels):
            if weights[q] < last:
                weights[q] = _F0
    total = _F0
    for q in range(levels):
        total = total + weights[q]
        cdf[q] = total
    target = u * total
    for q in range(levels):
        if cdf[q] > target:
            return q
    return levels - 1
