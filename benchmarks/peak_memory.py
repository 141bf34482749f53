"""Resident memory of this process for the benchmarks: now, and the peak since a reset.

Linux's VmHWM can be reset (/proc/self/clear_refs), so loading inputs before the clock does
not count; elsewhere ru_maxrss (peak since the process started) stands in. Each contender runs
in its own process, so the figures are its own. tracemalloc would miss torch's buffers.
"""

from __future__ import annotations

import resource


def rss_mb() -> float:
    """Resident set size now, MiB."""
    with open("/proc/self/statm") as status:
        return int(status.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM); False where Linux does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM (resettable) where Linux gives it, else ru_maxrss (peak since the start), MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
