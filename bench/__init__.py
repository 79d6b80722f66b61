"""tether's benchmark suite: decisions per second against peers, in-process and over HTTP.

Not part of the test suite: ``python bench/run.py`` (or ``make bench``, ``tether bench``).
"""
