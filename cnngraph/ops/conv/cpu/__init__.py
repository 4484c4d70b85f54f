"""conv on the CPU, by five algorithms, each in parallel over fixed chunks of the work (one
chunk per thread, kernels/cpu/chunks.py):

- im2col.py: im2col + GEMM per sample (or per stack of samples); a 1x1, stride-1, unpadded conv
  needs no column matrix;
- flat.py: flat columns, where each column row is one contiguous slice of the padded input;
- winograd.py: Winograd F(4x4, 3x3), for 3x3, stride-1 convs padded by 1;
- depthwise.py and depthwise_rows.py: direct loops for depthwise convs (groups == in == out
  channels), along each plane or along whole samples.

`choose.py` says which one a conv takes, and why. Each chunk of the batch owns a partial weight
gradient; the partials are summed in chunk order (gradients.py), and the depthwise chunks own
whole channels, so results are bitwise reproducible whichever thread runs which chunk.
"""
