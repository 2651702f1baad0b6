"""Profiling campaigns: many profiles, sharded by `plan`'s cost model, run on a Ray cluster and merged."""
