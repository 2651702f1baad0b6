"""The estimator: the paper's Eq. 1-4 over recorded SoT traces and a latency table."""

from sotlat.estimator.equations import OUTPUT_COLUMNS, estimate, estimate_answerable
from sotlat.estimator.request import request_latency
from sotlat.estimator.summary import performance_summary, summarize
from sotlat.estimator.traces import load_traces, traces_frame

__all__ = ["OUTPUT_COLUMNS", "estimate", "estimate_answerable", "load_traces", "performance_summary", "request_latency", "summarize", "traces_frame"]
