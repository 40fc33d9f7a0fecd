"""`python -m bench`: our training against the seed solution's pipeline, on one machine, in one run.

`seed_pipeline.py` is the baseline (rebuilt from its description), `seed_measurements.py` and
`our_measurements.py` time each pipeline the same way, `medians.py` holds the medians and
ratios, `trainpart1_timing.py` times Task 1's data preparation, `report.py` turns it all into
rows, and `__main__.py` runs everything and writes `results/bench.json`.
"""
