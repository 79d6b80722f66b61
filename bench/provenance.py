"""Provenance benchmark: CPU per destination traced against a task's results (issue 14).

A task of ``--results`` results (default 10) of ``--words`` random words each (default
1,500: about 12 KB of text), then :func:`tether.drift.provenance.trace` of a value found in
a result and of a value found in none (made up: every result is searched again for it
retyped, :mod:`tether.drift.rewording`), warm (each result's letters-and-digits form
cached, as for the later destinations of one task) and cold (that cache cleared before
each trace, as for a task's first destination). Median of ``--rounds`` rounds, in
``time.process_time`` (CPU of this process); nothing is asserted.

    PYTHONPATH=$PWD/src .venv/bin/python bench/provenance.py [--results 10] [--words 1500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from collections.abc import Callable

from tether.drift.provenance import RunRecord, read_output, trace


def _cpu_us(step: Callable[[], object], times: int, rounds: int) -> float:
    measured = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(times):
            step()
        measured.append((time.process_time() - started) / times * 1e6)
    return statistics.median(measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10)
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(2000)]
    outputs = tuple(
        read_output(
            f"decision:{i}",
            "read_file",
            " ".join(rng.choices(vocabulary, k=args.words)),
            covered=True,
        )
        for i in range(args.results)
    )
    record = RunRecord(outputs)
    held = outputs[-1].text.split()[args.words // 2]

    def traced(value: str) -> Callable[[], object]:
        return lambda: trace(value, intended=frozenset(), purpose="pay the bill", record=record)

    size = sum(len(o.text) for o in outputs)
    print(f"{args.results} results, {size:,} characters in all")
    print(f"value in the last result: {_cpu_us(traced(held), 500, args.rounds):.0f} µs CPU")
    made_up = traced("RECIPIENT_IBAN_HERE")
    print(f"made-up value, warm:      {_cpu_us(made_up, 500, args.rounds):.0f} µs CPU")
    try:
        from tether.drift.rewording import squeezed
    except ImportError:  # a tree from before rewordings: there is no cold case
        return

    def cold() -> object:
        squeezed.cache_clear()
        return made_up()

    print(f"made-up value, cold:      {_cpu_us(cold, 50, args.rounds):.0f} µs CPU")


if __name__ == "__main__":
    main()
