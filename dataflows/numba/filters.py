"""Numba operators: each a @cfunc that Apus calls through its address, with no interpreter.

The signature says what arrives and what is sent: `data` points at the input's float32 samples in
shared memory (read-only), `out` at a fresh float32 sample of the output, and `factor` comes from
the operator's `params:` in the dataflow. It returns how many elements it wrote (negative: an error).
"""
from numba import carray, cfunc, types


@cfunc(types.int64(types.CPointer(types.float32), types.int64, types.CPointer(types.float32), types.int64, types.float64))
def gain(data, n, out, capacity, factor):
    samples = carray(data, n)
    scaled = carray(out, capacity)
    for i in range(n):
        scaled[i] = samples[i] * factor
    return n
