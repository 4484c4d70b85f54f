"""batchnorm on the CPU. The kernels see a sample as one flat row of C·L values (channel c's
at [c·L, (c+1)·L)), so that every loop runs along a whole row and vectorises, also where a
channel's L is 4 or 1 (MobileNet's last maps, vectors); per-channel constants are expanded
into rows first (`flats`: scale, shift and mean, kept from the forward pass for the backward;
`terms`: the backward's). The kernels may reassociate their sums (NaN and infinity keep
their meaning; bench/results/kernels.md has the gain).

Training forward reads x twice. The first pass (chunk t over samples) sums, per position k,
x - x0 and (x - x0)² in parts[t], x0 being the chunk's first sample: shifted sums, so that the
variance is not a difference of large numbers. The chunks' sums combine per channel in
float64 (Chan et al.'s pairwise update of mean and squared deviations), and so do the data-
parallel workers' (kernels/cpu/workers.py: synchronised batch norm), then the second pass
writes y = (x - mean) * invstd * weight + bias with a fused activation (code `act`) while the
row is in cache. The running statistics move by `momentum`, the variance unbiased (as
PyTorch). Evaluation uses the running statistics; an inference program, which has no backward
pass, keeps `flats` per channel, not per position, and normalises plane by plane
(`_normalise_planes`): expanding the constants cost more than the pass itself on small batches.

Backward (training): dx = weight * invstd / M * (M g - Σ g - xhat Σ g·xhat), g the gradient
before the fused activation. Each pass finds g itself, from dy and the activation's output
recomputed from x (so it reads neither y nor a saved gradient); the first sums g and
g·(x - mean) per position, the second writes dx. With frozen statistics (`batch_statistics`
false: the forward pass normalised with the running ones, as in evaluation) the map is affine
with constant coefficients, dx = weight * invstd * g, and the sums serve the weight and bias
gradients alone. Vectors (N, F) are handled as (N, F, 1).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu import workers
from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ..conv.cpu.gradients import before_activation
from ..pointwise.cpu import activate_all
from ..pointwise.epilogue import CODES
from .lower import PIECE

SUMS_IN_ANY_ORDER = {"reassoc", "contract", "nsz", "arcp"}
RELU = CODES["relu"]


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _shifted_sums(t, chunks, x, parts, bounds):
    """Chunk t of the samples, [bounds[t], bounds[t + 1]): parts[t, 0] = Σ (x - x0),
    parts[t, 1] = Σ (x - x0)² per position, x0 the chunk's first sample."""
    lo, hi = bounds[t], bounds[t + 1]
    sums, squares = parts[t, 0], parts[t, 1]
    sums[:] = 0
    squares[:] = 0
    if hi == lo:
        return
    first = x[lo]
    for i in range(lo + 1, hi):
        row = x[i]
        for k in range(row.size):
            d = row[k] - first[k]
            sums[k] += d
            squares[k] += d * d


@chunk_kernel
def _moments(t, chunks, x, parts, bounds, moments):
    """Chunk t of the channels: for each chunk s of the samples, the mean of its values and
    the sum of their squared deviations from it in moments[s, ch], from its shifted sums."""
    width = x.shape[1]
    size = width // moments.shape[1]
    first, last = span(t, chunks, moments.shape[1])
    for ch in range(first, last):
        at = ch * size
        for s in range(moments.shape[0]):
            lo, hi = bounds[s], bounds[s + 1]
            if hi == lo:
                moments[s, ch, 0] = 0.0
                moments[s, ch, 1] = 0.0
                continue
            count = np.float64(hi - lo)
            base, sums = x[lo, at:at + size], parts[s, 0, at:at + size]
            total = 0.0
            for j in range(size):
                total += count * np.float64(base[j]) + sums[j]
            mu = total / (count * size)
            squares = parts[s, 1, at:at + size]
            deviations = 0.0
            for j in range(size):
                shift = np.float64(sums[j])
                centre = np.float64(base[j]) + shift / count - mu
                deviations += squares[j] - shift * shift / count + count * centre * centre
            moments[s, ch, 0] = mu
            moments[s, ch, 1] = deviations


def _combined(parts: list) -> tuple[np.ndarray, int]:
    """The moments (mean, squared deviations; per channel) of all the chunks' values together,
    and their count per channel, from every worker's (counts, moments) of its chunks, combined
    chunk by chunk in rank order (Chan et al.'s pairwise update; empty chunks add nothing).
    The same chunks give the same bits however they are shared out among the workers."""
    m, combined = 0, None
    for counts, moments in parts:
        for count, other in zip(counts, moments, strict=True):
            if not count:
                continue
            if combined is None:
                m, combined = count, other.copy()
                continue
            delta = other[:, 0] - combined[:, 0]
            total = m + count
            combined[:, 0] += delta * (count / total)
            combined[:, 1] += other[:, 1] + delta * delta * (m * count / total)
            m = total
    assert combined is not None, "a training step without samples"
    return combined, m


@chunk_kernel
def _statistics(t, chunks, moments, m, weight, bias, running_mean, running_var, invstd, flats,
                eps, momentum, training):
    """Chunk t of the channels: their invstd, and rows of scale, shift and mean in flats[0:3]
    (kept for the backward pass), from the batch's moments over `m` values per channel when
    training, else the running statistics."""
    size = flats.shape[1] // weight.size
    first, last = span(t, chunks, weight.size)
    for ch in range(first, last):
        at = ch * size
        if training:
            mu = moments[ch, 0]
            var = max(moments[ch, 1] / m, 0.0)
            running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * mu
            unbiased = var * m / (m - 1) if m > 1 else var
            running_var[ch] = (1 - momentum) * running_var[ch] + momentum * unbiased
        else:
            mu = np.float64(running_mean[ch])
            var = np.float64(running_var[ch])
        inv = 1.0 / np.sqrt(var + eps)
        invstd[ch] = inv
        scale = weight[ch] * inv
        flats[0, at:at + size] = scale
        flats[1, at:at + size] = bias[ch] - mu * scale
        flats[2, at:at + size] = mu


@njit(cache=True, inline="always")
def _piece(position, width, end):
    """The sample and the range [k0, k1) of its row from flat position `position` on, up to
    flat position `end`, at most PIECE values: the loops over a piece (the affine map, the
    activation, its derivative, the sums) then read it from the L1 cache, where separate loops
    over a whole row each read it from memory again (2.2x slower, measured). The kernels slice
    a piece as `a[i][k0:k1]`: Numba types `a[i, k0:k1]` as of any layout ('A'), and its loops
    ran 2-3x slower."""
    i, k0 = divmod(position, width)
    return i, k0, min(width, k0 + end - position, k0 + PIECE)


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _normalise(t, chunks, x, y, flats, act, act_arg):
    """Chunk t of the flat positions of the batch: y = x * scale + shift, then the activation."""
    n, width = x.shape
    position, end = span(t, chunks, n * width)
    while position < end:
        i, k0, k1 = _piece(position, width, end)
        src, dst = x[i][k0:k1], y[i][k0:k1]
        scale, shift = flats[0][k0:k1], flats[1][k0:k1]
        for k in range(k1 - k0):
            dst[k] = src[k] * scale[k] + shift[k]
        if act != 0:
            activate_all(dst, act, act_arg)
        position += k1 - k0


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _normalise_planes(t, chunks, x, y, flats, act, act_arg):
    """Chunk t of the batch's (sample, channel) planes: y = x * scale + shift, the channel's
    (flats per channel), then the activation."""
    n, channels = x.shape[0], flats.shape[1]
    size = x.shape[1] // channels
    lo, hi = span(t, chunks, n * channels)
    for plane in range(lo, hi):
        i, c = plane // channels, plane % channels
        src, dst = x[i][c * size:(c + 1) * size], y[i][c * size:(c + 1) * size]
        scale, shift = flats[0, c], flats[1, c]
        for k in range(size):
            dst[k] = src[k] * scale + shift
        if act != 0:
            activate_all(dst, act, act_arg)


@njit(cache=True, inline="always")
def _raw_gradient(dy, x, scale, shift, rows, act, act_arg):
    """The gradient before the fused activation (code `act`) of a piece of a sample: dy itself
    without one; else from the activation's output, recomputed from x into rows[0], into
    rows[1] (so the backward pass reads neither y nor a saved gradient). ReLU, nearly every
    batch norm's, takes one loop (1.6x faster than the general four)."""
    if act == 0:
        return dy
    out, g = rows[0][:x.size], rows[1][:x.size]   # (C-contiguous, like dy: see _piece)
    if act == RELU:
        for k in range(x.size):
            g[k] = dy[k] if x[k] * scale[k] + shift[k] > 0 else dy[k] * 0
        return g
    for k in range(x.size):
        out[k] = x[k] * scale[k] + shift[k]
    activate_all(out, act, act_arg)
    before_activation(g, dy, out, act, act_arg)
    return g


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _gradient_pass(t, chunks, x, dy, dx, rows, flats, terms, parts, bounds, act, act_arg,
                   summing):
    """g, the gradient before the fused activation, piece by piece; when `summing`, chunk t of
    the samples, [bounds[t], bounds[t + 1]), adds per position parts[t, 0] = Σ g,
    parts[t, 1] = Σ g·(x - mean); else chunk t of the flat positions of the batch writes
    dx = a·g + b·(x - mean) + c. (One kernel for both passes: it compiles the activations'
    code once, where two took 0.7 s more.)"""
    n, width = x.shape
    if summing:
        position, end = bounds[t] * width, bounds[t + 1] * width
        parts[t] = 0
    else:
        position, end = span(t, chunks, n * width)
    while position < end:
        i, k0, k1 = _piece(position, width, end)
        row = x[i][k0:k1]
        g = _raw_gradient(dy[i][k0:k1], row, flats[0][k0:k1], flats[1][k0:k1], rows[t], act,
                          act_arg)
        centre = flats[2][k0:k1]
        if summing:
            sums, products = parts[t, 0][k0:k1], parts[t, 1][k0:k1]
            for k in range(k1 - k0):
                sums[k] += g[k]
                products[k] += g[k] * (row[k] - centre[k])
        else:
            out = dx[i][k0:k1]
            a, b, c = terms[0][k0:k1], terms[1][k0:k1], terms[2][k0:k1]
            for k in range(k1 - k0):
                out[k] = a[k] * g[k] + b[k] * (row[k] - centre[k]) + c[k]
        position += k1 - k0


@chunk_kernel
def _channel_sums(t, chunks, parts, sums, size):
    """Chunk t of the channels: for each chunk s of the samples, Σ g and Σ g·(x - mean) per
    channel in sums[s, ch], from its sums per position (`size` positions a channel)."""
    first, last = span(t, chunks, sums.shape[1])
    for ch in range(first, last):
        at = ch * size
        for s in range(sums.shape[0]):
            g, products = parts[s, 0, at:at + size], parts[s, 1, at:at + size]
            sum_g = 0.0
            sum_g_centred = 0.0
            for j in range(size):
                sum_g += g[j]
                sum_g_centred += products[j]
            sums[s, ch, 0] = sum_g
            sums[s, ch, 1] = sum_g_centred


@chunk_kernel
def _gradient_terms(t, chunks, own, total, weight, invstd, dweight, dbias, terms, m, need_dw,
                    need_db, batch_statistics):
    """Chunk t of the channels: rows of weight gradients (when `need_dw`) and bias gradients
    (when `need_db`), dweight[r] and dbias[r] from the sums own[r], and dx = a·g +
    b·(x - mean) + c as rows a, b, c in terms[0:3], from the sums `total` of every worker's
    `m` values per channel: b and c are 0 where the mean and invstd are constants (not
    `batch_statistics`)."""
    size = terms.shape[1] // weight.size
    first, last = span(t, chunks, weight.size)
    for ch in range(first, last):
        at = ch * size
        inv = np.float64(invstd[ch])
        for r in range(own.shape[0]):
            if need_dw:
                dweight[r, ch] = own[r, ch, 1] * inv
            if need_db:
                dbias[r, ch] = own[r, ch, 0]
        terms[0, at:at + size] = weight[ch] * inv
        if batch_statistics:
            k = weight[ch] * inv / m
            terms[1, at:at + size] = -k * inv * inv * total[ch, 1]
            terms[2, at:at + size] = -k * total[ch, 0]
        else:
            terms[1, at:at + size] = 0
            terms[2, at:at + size] = 0


def _rows(*tensors):
    """(N, C, L) views as (N, C·L) rows."""
    return [tensor.reshape(tensor.shape[0], -1) for tensor in tensors]


def _bounds(n: int, chunks: int, shards) -> np.ndarray:
    """The samples' chunks as bounds: the step's shards where given (the exact reduction:
    train/parallel.py), else `chunks` spans of the n samples (at most one chunk a sample)."""
    if shards is not None:
        return np.asarray([lo for lo, _ in shards] + [shards[-1][1]], np.int64)
    chunks = min(chunks, n)
    if not chunks:
        return np.zeros(1, np.int64)
    return np.asarray([t * n // chunks for t in range(chunks + 1)], np.int64)


def batchnorm_fwd_cpu(x, y, weight, bias, running_mean, running_var, invstd, parts, flats, eps,
                      momentum, training, act, act_arg, shards=None) -> None:
    """Training, the statistics are those of every data-parallel worker's samples
    (workers.py), combined chunk by chunk in order: with `shards`, chunk s is shard s."""
    x, y = _rows(x, y)
    chunks = split(x.size)
    moments, m = np.zeros((weight.size, 2)), 0
    if training:
        bounds = _bounds(x.shape[0], parts.shape[0], shards)
        parted = bounds.size - 1
        run_chunks(_shifted_sums, parted, x, parts, bounds)
        local = np.empty((parted, weight.size, 2))
        run_chunks(_moments, split(x.shape[1] * parted), x, parts, bounds, local)
        counts = np.diff(bounds) * (x.shape[1] // weight.size)
        moments, m = _combined(workers.gather((counts.tolist(), local)))
    run_chunks(_statistics, split(x.shape[1]), moments, m, weight, bias, running_mean,
               running_var, invstd, flats, eps, momentum, training)
    if flats.shape[1] < x.shape[1]:         # per channel: an inference program's
        run_chunks(_normalise_planes, chunks, x, y, flats, act, act_arg)
    else:
        run_chunks(_normalise, chunks, x, y, flats, act, act_arg)


def batchnorm_bwd_cpu(x, dy, dx, weight, invstd, weight_grad, bias_grad, parts, flats, terms,
                      rows, act, act_arg, need_dx, need_dw, need_db, batch_statistics,
                      shards=None) -> None:
    """flats: the forward pass's rows of scale, shift and mean (the running statistics' where
    not `batch_statistics`). With them, dx needs the sums over every data-parallel worker's
    samples (workers.py), added chunk by chunk in order; the weight and bias gradients are
    this worker's part: with `shards`, a row per shard (weight_grad and bias_grad (S, C))."""
    x, dy, dx = _rows(x, dy, dx)
    chunks = split(x.size)
    # dx needs the sums of g and g·(x - mean) only with the batch's statistics; without any
    # chunk's sums, the sums are 0
    summing = batch_statistics or need_dw or need_db
    bounds = _bounds(x.shape[0], parts.shape[0] if summing else 0, shards)
    parted = bounds.size - 1
    if summing:
        run_chunks(_gradient_pass, parted, x, dy, dx, rows, flats, terms, parts, bounds, act,
                   act_arg, True)
    sums = np.zeros((parted, weight.size, 2))
    run_chunks(_channel_sums, split(x.shape[1] * parted), parts, sums,
               x.shape[1] // weight.size)
    size = x.shape[1] // weight.size
    m, total = x.shape[0] * size, np.zeros((weight.size, 2))
    if batch_statistics:
        m = 0
        for counts, chunk_sums in workers.gather((np.diff(bounds) * size, sums)):
            m += int(counts.sum())
            for chunk in chunk_sums:
                total += chunk
    own = sums if shards is not None else sums.sum(axis=0, keepdims=True)
    run_chunks(_gradient_terms, split(x.shape[1]), own, total, weight, invstd,
               weight_grad.reshape(-1, weight.size), bias_grad.reshape(-1, weight.size), terms,
               m, need_dw, need_db, batch_statistics)
    if need_dx:     # (a chunk a workspace row: no more chunks than the lowering made rows)
        run_chunks(_gradient_pass, min(chunks, rows.shape[0]), x, dy, dx, rows, flats, terms,
                   parts, bounds, act, act_arg, False)


@chunk_kernel
def _fold(t, chunks, params, buffers, folded, table, eps):
    """Batch norm folded into the conv before it (passes/fold.py), a chunk of all the folds'
    output channels taken in order: in float64, each value rounded once. A row of `table` per
    fold: where its values start in the flat arrays (FOLD_COLUMNS), its output channels and
    their weights each."""
    lo, hi = span(t, chunks, table[:, _CHANNELS].sum())
    first = 0                    # the fold's first channel, counted over all folds
    for f in range(table.shape[0]):
        row = table[f]
        channels, per = row[_CHANNELS], row[_PER_CHANNEL]
        for o in range(max(lo, first) - first, min(hi, first + channels) - first):
            scale = np.float64(params[row[_GAMMA] + o]) / np.sqrt(
                np.float64(buffers[row[_VAR] + o]) + eps[f])
            weights = params[row[_WEIGHT] + o * per:row[_WEIGHT] + (o + 1) * per]
            out = folded[row[_OUT_WEIGHT] + o * per:row[_OUT_WEIGHT] + (o + 1) * per]
            for i in range(per):
                out[i] = weights[i] * scale
            shift = np.float64(params[row[_BIAS] + o]) if row[_BIAS] >= 0 else 0.0
            folded[row[_OUT_BIAS] + o] = (shift - buffers[row[_MEAN] + o]) * scale \
                + params[row[_BETA] + o]
        first += channels


# fold_table's columns: offsets into the flat parameters (the conv's weight and bias, -1 without
# one; the batch norm's weight and bias), buffers (its running mean and variance) and folded
# values (the folded weight and bias); then the output channels and the weights of each
FOLD_COLUMNS = ("weight", "bias", "gamma", "beta", "mean", "var", "out_weight", "out_bias",
                "channels", "per_channel")
(_WEIGHT, _BIAS, _GAMMA, _BETA, _MEAN, _VAR, _OUT_WEIGHT, _OUT_BIAS, _CHANNELS,
 _PER_CHANNEL) = range(len(FOLD_COLUMNS))


def _offset(view, flat) -> int:
    """Where `view` starts in `flat`, in elements (a view of it)."""
    assert view.base is flat, "a folded value outside its flat array"
    return (view.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) \
        // flat.itemsize


def fold_table(folds, params: dict, buffers: dict, folded: dict) -> tuple:
    """The table (one row per fold, FOLD_COLUMNS) and eps of `fold_cpu`, from the views of
    the model's flat parameters, buffers and folded values."""
    flats = [next(iter(d.values())).base for d in (params, buffers, folded)]
    rows = []
    for fold in folds:
        w = params[f"{fold.conv}.weight"]
        bias = params.get(f"{fold.conv}.bias")
        rows.append([_offset(v, flats[k]) if v is not None else -1 for k, v in (
            (0, w), (0, bias), (0, params[f"{fold.norm}.weight"]),
            (0, params[f"{fold.norm}.bias"]), (1, buffers[f"{fold.norm}.running_mean"]),
            (1, buffers[f"{fold.norm}.running_var"]), (2, folded[f"{fold.norm}.weight"]),
            (2, folded[f"{fold.norm}.bias"]))] + [w.shape[0], w.size // w.shape[0]])
    return (*flats, np.array(rows, np.int64).reshape(-1, len(FOLD_COLUMNS)),
            np.array([fold.eps for fold in folds], np.float64))


def fold_cpu(params, buffers, folded, table, eps) -> None:
    """Every fold's conv weight and bias from the current values (`fold_table` says where they
    lie in the flat arrays), into the flat folded values, in one call: inference refolds before
    every call, so this must be cheap: a compiled kernel, not NumPy in float64
    (bench/results/kernels.md), and one call for all the folds (a call per fold spent ~30 us in
    dispatch: 1.1 ms of MobileNet v2's 38 at batch 1)."""
    run_chunks(_fold, split(int(table[:, _PER_CHANNEL] @ table[:, _CHANNELS])), params, buffers,
               folded, table, eps)

