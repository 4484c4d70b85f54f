"""Block-level tree reduction, a device function included in the kernels that reduce.

Each thread contributes one partial value; the block halves the active range each round in
shared memory (THREADS is a power of two), so a sum costs log2(THREADS) synchronised rounds
and no atomics. Every thread of the block must call it (it synchronises).
"""
BLOCK_SUM = '''
@cuda.jit(device=True, inline=True)
def block_sum(shared, value):
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            shared[t] += shared[t + step]
        cuda.syncthreads()
        step //= 2
    total = shared[0]
    cuda.syncthreads()
    return total
'''
