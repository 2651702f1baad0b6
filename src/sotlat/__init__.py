"""sotlat: profile LLM prefill/decode latency and estimate Skeleton-of-Thought speed-ups."""

__version__ = "0.1.0"
