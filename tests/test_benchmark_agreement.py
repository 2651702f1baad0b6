"""The benchmark's plain per-trace loop of Eq. 1-4 and estimate() agree on random inputs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from estimate_vs_loop import compare  # noqa: E402


def test_vectorised_estimate_equals_plain_loop_on_the_paper_grid():
    result = compare(300)  # asserts equality of every compared column inside
    assert result["traces"] == 300 and result["loop_s"] > 0
