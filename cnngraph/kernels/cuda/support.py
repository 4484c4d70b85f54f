"""CUDA kernels the step code needs beside the ops: copies, gradient sums, per-channel sums,
the losses (softmax cross-entropy, mean squared and absolute error, binary cross-entropy
with logits, the soft-target loss of distillation), and the global squared norm; with their
host launchers.

Arrays are viewed flat (or as (N, C, L)) by the launchers; every kernel loops grid-stride.
"""
from __future__ import annotations

from numba import cuda

from .launch import blocks, instantiate, run
from .reduce import BLOCK_SUM

_TEMPLATE = BLOCK_SUM + '''

@cuda.jit(cache=True)
def copy(src, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i]


@cuda.jit(cache=True)
def add2(a, b, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[i] + b[i]


@cuda.jit(cache=True)
def add_into(out, a):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] += a[i]


@cuda.jit(cache=True)
def scale(x, factor):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        x[i] *= factor


@cuda.jit(cache=True)
def channel_sum(x, out):
    """out[c] = sum of x[:, c, :]: one block per channel (grid-stride), a tree in the block."""
    shared = cuda.shared.array(THREADS, F)
    n, c, size = x.shape
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        total = F(0)
        for e in range(cuda.threadIdx.x, n * size, THREADS):
            total += x[e // size, ch, e % size]
        total = block_sum(shared, total)
        if cuda.threadIdx.x == 0:
            out[ch] = total


@cuda.jit(cache=True)
def sum_splits(parts, out, splits):
    """out = the sum of the first `splits` partial products, in order (reproducible)."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        total = parts[0, i]
        for s in range(1, splits):
            total += parts[s, i]
        out[i] = total


@cuda.jit(cache=True)
def square_partials(x, partials):
    """partials[block] = the sum of squares of the elements the block visits."""
    shared = cuda.shared.array(THREADS, F)
    total = F(0)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        total += x[i] * x[i]
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        partials[cuda.blockIdx.x] = total


@cuda.jit(cache=True)
def total(x, out):
    """out[0] = the sum of x, in one block."""
    shared = cuda.shared.array(THREADS, F)
    value = F(0)
    for i in range(cuda.threadIdx.x, x.size, THREADS):
        value += x[i]
    value = block_sum(shared, value)
    if cuda.threadIdx.x == 0:
        out[0] = value


@cuda.jit(device=True, inline=True)
def set_loss(loss, accumulate, value):
    """loss[0] = value, or += with `accumulate` (a step's later outputs add to the first's)."""
    if accumulate:
        loss[0] += value
    else:
        loss[0] = value


@cuda.jit(cache=True)
def softmax_xent(logits, labels, dlogits, loss, accumulate, smoothing, weight):
    """`weight` times the mean cross-entropy of softmax(logits) against smoothed labels, and
    its gradient, in one block: a thread per sample (log-sum-exp), the batch total by a tree
    reduction."""
    shared = cuda.shared.array(THREADS, F)
    n_batch, classes = logits.shape
    off = smoothing / F(classes)
    on = F(1) - smoothing + off
    scale = weight / F(n_batch)
    total = F(0)
    for n in range(cuda.threadIdx.x, n_batch, THREADS):
        peak = logits[n, 0]
        for c in range(1, classes):
            peak = max(peak, logits[n, c])
        denom = F(0)
        for c in range(classes):
            denom += math.exp(logits[n, c] - peak)
        log_denom = math.log(denom) + peak
        for c in range(classes):
            target = on if c == labels[n] else off
            total -= target * (logits[n, c] - log_denom)
            dlogits[n, c] = (math.exp(logits[n, c] - log_denom) - target) * scale
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        set_loss(loss, accumulate, total * scale)


@cuda.jit(cache=True)
def distill(outputs, teacher, doutputs, loss, accumulate, temperature, weight, add):
    """Hinton et al.'s soft-target loss and its gradient, as kernels/cpu/support.distill_cpu:
    a thread per sample, the batch total by a tree reduction."""
    shared = cuda.shared.array(THREADS, F)
    n_batch, classes = outputs.shape
    inverse = F(1) / temperature
    step = weight * temperature / F(n_batch)
    total = F(0)
    for n in range(cuda.threadIdx.x, n_batch, THREADS):
        peak_z, peak_t = outputs[n, 0], teacher[n, 0]
        for c in range(1, classes):
            peak_z, peak_t = max(peak_z, outputs[n, c]), max(peak_t, teacher[n, c])
        denom_z, denom_t = F(0), F(0)
        for c in range(classes):
            denom_z += math.exp((outputs[n, c] - peak_z) * inverse)
            denom_t += math.exp((teacher[n, c] - peak_t) * inverse)
        log_z, log_t = math.log(denom_z), math.log(denom_t)
        for c in range(classes):
            student = (outputs[n, c] - peak_z) * inverse - log_z
            target = (teacher[n, c] - peak_t) * inverse - log_t
            p = math.exp(target)
            total += p * (target - student)
            gradient = (math.exp(student) - p) * step
            doutputs[n, c] = doutputs[n, c] + gradient if add else gradient
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        set_loss(loss, accumulate, total * weight * temperature * temperature / F(n_batch))


# The element-wise losses: `weight` times the mean over every element of flat outputs against
# targets (PyTorch's reduction='mean'), and its gradient; one block, the total by a tree.

@cuda.jit(cache=True)
def mse(outputs, targets, doutputs, loss, accumulate, weight):
    shared = cuda.shared.array(THREADS, F)
    scale = weight / F(outputs.size)
    twice = F(2) * scale
    total = F(0)
    for i in range(cuda.threadIdx.x, outputs.size, THREADS):
        diff = outputs[i] - targets[i]
        total += diff * diff
        doutputs[i] = twice * diff
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        set_loss(loss, accumulate, total * scale)


@cuda.jit(cache=True)
def l1(outputs, targets, doutputs, loss, accumulate, weight):
    """Gradient sign(z - t), 0 where z == t (as PyTorch)."""
    shared = cuda.shared.array(THREADS, F)
    scale = weight / F(outputs.size)
    total = F(0)
    for i in range(cuda.threadIdx.x, outputs.size, THREADS):
        diff = outputs[i] - targets[i]
        total += abs(diff)
        doutputs[i] = scale if diff > F(0) else -scale if diff < F(0) else F(0)
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        set_loss(loss, accumulate, total * scale)


@cuda.jit(cache=True)
def bce_with_logits(outputs, targets, doutputs, loss, accumulate, weight):
    """max(z, 0) - z t + log1p(exp(-|z|)) and sigmoid(z) - t, both from exp(-|z|) <= 1: no
    overflow and no lost small terms for any logit."""
    shared = cuda.shared.array(THREADS, F)
    scale = weight / F(outputs.size)
    total = F(0)
    for i in range(cuda.threadIdx.x, outputs.size, THREADS):
        z = outputs[i]
        t = targets[i]
        e = math.exp(-abs(z))
        total += max(z, F(0)) - z * t + math.log1p(e)
        sigmoid = F(1) / (F(1) + e) if z >= F(0) else e / (F(1) + e)
        doutputs[i] = (sigmoid - t) * scale
    total = block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        set_loss(loss, accumulate, total * scale)
'''

KERNELS = instantiate(_TEMPLATE, "support")


def _flat(a):
    return a.reshape(a.size)


def copy_cuda(src, dst) -> None:
    run(KERNELS[src.dtype].copy, blocks(src.size), _flat(src), _flat(dst))


def sum_cuda(out, parts) -> None:
    """out = the sum of the partial gradients of a tensor that feeds several layers."""
    k = KERNELS[out.dtype]
    grid = blocks(out.size)
    run(k.add2, grid, _flat(parts[0]), _flat(parts[1]), _flat(out))
    for part in parts[2:]:
        run(k.add_into, grid, _flat(out), _flat(part))


def scale_cuda(x, factor: float) -> None:
    run(KERNELS[x.dtype].scale, blocks(x.size), _flat(x), x.dtype.type(factor))


def channel_sum_cuda(x, out) -> None:
    """out[c] = x summed over every axis but axis 1."""
    x3 = x.reshape(x.shape[0], x.shape[1], x.size // (x.shape[0] * x.shape[1]))
    run(KERNELS[x.dtype].channel_sum, blocks(x.shape[1], 1), x3, out)


def sum_splits_cuda(parts, out, splits: int) -> None:
    run(KERNELS[out.dtype].sum_splits, blocks(out.size),
        parts.reshape(parts.shape[0], out.size), _flat(out), splits)


def squared_norm_cuda(x, partials) -> float:
    """The sum of squares of x (two tree reductions on the device; one scalar comes back)."""
    k = KERNELS[x.dtype]
    grid = min(blocks(x.size), partials.size)
    run(k.square_partials, grid, _flat(x), partials[:grid])
    run(k.total, 1, partials[:grid], partials[grid:grid + 1])
    return float(partials[grid:grid + 1].copy_to_host()[0])


_LOSS = {}   # dtype -> the one-element device array the loss is written to


def _loss(dtype, total):
    """The one-element device array a loss goes to, and whether the kernel adds to it: the
    step's `total` so far (its earlier outputs' losses), or the dtype's own array."""
    if total is not None:
        return total, True
    if dtype not in _LOSS:
        _LOSS[dtype] = cuda.device_array(1, dtype)
    return _LOSS[dtype], False


def _per_batch(weight, n_batch: int, batch: int):
    """`weight` for a kernel that divides by its own `n_batch` samples, where the mean is over
    `batch` (kernels/cpu/support.softmax_xent_cpu)."""
    return weight if batch == n_batch else weight * n_batch / batch


def softmax_xent_cuda(logits, labels, dlogits, smoothing, weight, batch, total=None):
    """Fills dlogits and the loss (times `weight`, over `batch` samples; added to `total` when
    given); returns the loss as a one-element device array (read it with `to_host` when
    needed: the step itself never waits for the host)."""
    loss, accumulate = _loss(logits.dtype, total)
    f = logits.dtype.type
    run(KERNELS[logits.dtype].softmax_xent, 1, logits, labels, dlogits, loss, accumulate,
        f(smoothing), f(_per_batch(weight, logits.shape[0], batch)))
    return loss


def distill_cuda(outputs, teacher, doutputs, temperature, weight, add, batch, total=None):
    """The soft-target loss of outputs (N, K) against a teacher's logits (N, K) at
    `temperature` (kernels/cpu/support.distill_cpu); its gradient added to doutputs where
    `add`; returns the loss as softmax_xent_cuda does."""
    loss, accumulate = _loss(outputs.dtype, total)
    f = outputs.dtype.type
    run(KERNELS[outputs.dtype].distill, 1, outputs, teacher, doutputs, loss, accumulate,
        f(temperature), f(_per_batch(weight, outputs.shape[0], batch)), add)
    return loss


def _elementwise(name: str, outputs, targets, doutputs, weight, batch, total):
    loss, accumulate = _loss(outputs.dtype, total)
    run(getattr(KERNELS[outputs.dtype], name), 1, _flat(outputs), _flat(targets),
        _flat(doutputs), loss, accumulate,
        outputs.dtype.type(_per_batch(weight, outputs.shape[0], batch)))
    return loss


def mse_cuda(outputs, targets, doutputs, weight, batch, total=None):
    """`weight` times the mean squared error of outputs (N, K) against targets; fills doutputs
    and returns the loss as softmax_xent_cuda does."""
    return _elementwise("mse", outputs, targets, doutputs, weight, batch, total)


def l1_cuda(outputs, targets, doutputs, weight, batch, total=None):
    """`weight` times the mean absolute error (gradient 0 at ties); as mse_cuda."""
    return _elementwise("l1", outputs, targets, doutputs, weight, batch, total)


def bce_with_logits_cuda(outputs, targets, doutputs, weight, batch, total=None):
    """`weight` times the mean binary cross-entropy of sigmoid(outputs) against targets in
    [0, 1]; as mse_cuda."""
    return _elementwise("bce_with_logits", outputs, targets, doutputs, weight, batch, total)
