"""Load, measured in a process of its own so its peak RSS is its own.

``python -m reliability.load_child rebases --count N --image REF [--publish]`` rebases IMAGE N
times in this process, alternating ``pybuild/run:tiny-2`` and ``-1``, and prints one JSON line
of figures: seconds, rebases per second, RSS after the first tenth and at the end, peak RSS.
``python -m reliability.load_child cli ARGS...`` runs the pybuild CLI and writes its peak RSS
to ``$PYBUILD_TEST_RSS_FILE`` when it exits.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import time


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report the
    # parent's (pytest's) peak, not this process's.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def rebases(count: int, image: str, publish: bool) -> dict[str, float]:
    from lifecycle.platform.rebase import RebaseOptions, rebase

    started = time.monotonic()
    early = 0
    for number in range(count):
        run_image = f"pybuild/run:tiny-{2 - number % 2}"  # the image starts on tiny-1
        report = rebase(RebaseOptions(image, run_image=run_image, publish=publish))
        assert report.result is not None and not report.result.up_to_date, report
        if number == max(count // 10, 1):
            early = _rss_kib()
    seconds = time.monotonic() - started
    return {
        "rebases": count,
        "seconds": round(seconds, 2),
        "rebases_per_second": round(count / seconds, 1),
        "rss_mib_after_first_tenth": round(early / 1024, 1),
        "rss_mib_at_end": round(_rss_kib() / 1024, 1),
        "peak_rss_mib": round(_peak_kib() / 1024, 1),
    }


def cli(args: list[str]) -> None:
    target = os.environ["PYBUILD_TEST_RSS_FILE"]

    def write_peak() -> None:
        with open(target, "w") as out:
            out.write(str(_peak_kib()))

    atexit.register(write_peak)
    sys.argv = ["pybuild", *args]
    from lifecycle.cli.main import main

    main()


if __name__ == "__main__":
    if sys.argv[1] == "cli":
        cli(sys.argv[2:])
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("what", choices=["rebases"])
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--image", required=True)
        parser.add_argument("--publish", action="store_true")
        options = parser.parse_args()
        print(json.dumps(rebases(options.count, options.image, options.publish)))
