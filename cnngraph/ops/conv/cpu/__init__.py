"""conv on the CPU, by seven algorithms, each in parallel over fixed chunks of the work (one
chunk per thread, kernels/cpu/chunks.py):

- im2col.py: im2col + GEMM per sample (or per stack of samples); a 1x1, stride-1, unpadded conv
  needs no column matrix;
- flat.py: direct, register-tiled products on the padded input's flat planes, where each
  column row of im2col is one contiguous slice (few output channels);
- winograd.py: Winograd F(4x4, 3x3), for 3x3, stride-1 convs padded by 1;
- depthwise.py, depthwise_rows.py, depthwise_3x3.py and depthwise_3x3_s2.py: direct loops for
  depthwise convs (groups == in == out channels), along each plane's padded stride phases,
  along whole samples (small maps), or all nine taps of a 3x3 conv in one pass along each plane
  (larger maps), split into its even and odd columns for stride 2.

`choose.py` says which one a conv takes, and why. Each chunk of the batch owns a partial weight
gradient; the partials are summed in chunk order (gradients.py), and the depthwise chunks own
whole channels, so results are bitwise reproducible whichever thread runs which chunk.
"""
