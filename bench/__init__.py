"""`make bench`: our MNIST training against the seed solution's pipeline; all of it is in `__main__.py`."""
