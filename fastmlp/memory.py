"""This process's peak memory, for the run summary and the benchmarks (no Numba import: a
benchmark child of another framework measures itself without fastmlp's footprint)."""

import resource


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB: VmHWM on Linux (ru_maxrss there
    carries a parent's peak across fork and exec), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
