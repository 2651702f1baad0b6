"""What-if for GPUs nobody here has: an analytical model that writes latency tables."""
