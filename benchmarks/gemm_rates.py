"""OpenBLAS's sgemm rate on the wide network's shapes, at one and two threads: the ceiling of
compare.py's 784-1024-1024-10 row, whose step is these GEMMs. NumPy's BLAS, held to T threads
by threadpoolctl; best and median of 5 timings of about 2 GFLOP each. A profile, not a
benchmark: compare.py's interleaved runs are what the README quotes.

    python benchmarks/gemm_rates.py
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

# (M, K, N): C (M, N) = A (M, K) @ B (K, N). Phase 1 of a step at batch 128 runs 64 rows per
# thread (the forward GEMMs and the input gradient); phase 2 the weight gradient's (D, B) @ (B, H)
SHAPES = {
    "2048^3 (near peak)": (2048, 2048, 2048),
    "64x785x1024": (64, 785, 1024),
    "128x785x1024": (128, 785, 1024),
    "64x1024x1024": (64, 1024, 1024),
    "128x1024x1024": (128, 1024, 1024),
    "1024x128x1024 (dW)": (1024, 128, 1024),
}


def rate(m, k, n, repeats=5):
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    for _ in range(3):
        np.matmul(a, b, out=c)
    calls = max(3, int(2e9 / (2 * m * k * n)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            np.matmul(a, b, out=c)
        times.append((time.perf_counter() - t) / calls)
    flop = 2 * m * k * n
    return flop / min(times) / 1e9, flop / sorted(times)[len(times) // 2] / 1e9


def main():
    for threads in (1, 2):
        with threadpool_limits(threads):
            for name, (m, k, n) in SHAPES.items():
                best, median = rate(m, k, n)
                print(f"threads {threads}  {name:20s}  best {best:6.1f} GFLOP/s  "
                      f"median {median:6.1f}")


if __name__ == "__main__":
    main()
