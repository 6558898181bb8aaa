"""Benchmarks: pipeline, 2D stage, lifters, backends (results in out/bench/)."""
