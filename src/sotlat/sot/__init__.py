"""Skeleton-of-Thought itself: prompts, skeleton parsing, generation, traces, replay, validation."""
