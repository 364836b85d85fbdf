"""Wall time of generating the synthetic suite (`akb.data.synthetic.generate_suite`), which the
demo workflow runs first. A speed check, kept out of the tests: there a busy machine would make it
fail for no fault of the code.

Usage (from the repository root):

    python bench/synthetic_generation.py                      # the default sizes
    python bench/synthetic_generation.py --n-test 360 --n-train 600 --budget 45

--budget: exit 1 when generation takes longer (seconds); without it the time is only reported.
Timings are wall-clock on whatever else the machine is doing: run on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from akb.data import synthetic as syn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=syn.DEFAULT_N_TEST)
    parser.add_argument("--n-train", type=int, default=syn.DEFAULT_N_TRAIN)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speech-engine", default=syn.DEFAULT_SPEECH_ENGINE, choices=syn.SPEECH_ENGINES)
    parser.add_argument("--budget", type=float, default=None, help="seconds; exit 1 when exceeded")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        syn.generate_suite(out, args.seed, args.n_test, args.n_train, speech_engine=args.speech_engine)
        elapsed = time.perf_counter() - start
    clips = args.n_test + args.n_train
    print(f"{clips} clips ({args.speech_engine}) in {elapsed:.1f} s: {clips / elapsed:.1f} clips/s")
    if args.budget is not None and elapsed > args.budget:
        print(f"over the budget of {args.budget:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
