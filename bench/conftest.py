"""pytest-benchmark suites: `python -m pytest bench/ --benchmark-only` (needs the `bench`
extra; torch cases run when torch==2.13.0 is installed).  They measure and report; they
never assert timings."""
