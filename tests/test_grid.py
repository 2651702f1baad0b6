import numpy as np
import pytest

from sotlat.errors import InputError
from sotlat.tables.grid import MAX_CELLS, PrefillGrid, check_grid, format_batches, parse_batches, parse_range


def test_paper_prefill_lookup_is_floor_l_over_10_times_10_plus_1():
    grid = parse_range("1:700:10")
    lengths = np.array(grid.lengths)
    for l, expected in [(1, 1), (9, 1), (10, 11), (11, 11), (19, 11), (128, 121), (699, 691)]:
        assert lengths[grid.index(l)] == expected == (l // 10) * 10 + 1
    assert grid.index(700) == len(lengths)  # t^P(701) was never profiled: out of range


def test_other_arithmetic_grid_uses_floor_l_over_step():
    grid = PrefillGrid(5, 200, 40)
    assert [grid.lengths[grid.index(l)] for l in (3, 39, 40, 121)] == [5, 5, 45, 125]


def test_parse_batches_range_and_list():
    assert parse_batches("1-4") == [1, 2, 3, 4]
    assert parse_batches("8,1,2,2") == [1, 2, 8]
    assert parse_batches("1-8,12,16") == [*range(1, 9), 12, 16] and parse_batches(" 1 - 3 ,7") == [1, 2, 3, 7]


@pytest.mark.parametrize("batches, text", [([1, 2, 3, 4], "1-4"), ([16], "16"), ([1, 2, 8], "1,2,8"), ([3, 5], "3,5"), ([3, 4], "3-4"),
                                           ([1, 3, 5, 6, 7, 8, 14], "1,3,5-8,14"), ([1, 2, 4, 5, 6], "1,2,4-6")])
def test_format_batches_is_what_parse_batches_reads(batches, text):
    assert format_batches(batches) == text and parse_batches(text) == batches


@pytest.mark.parametrize("text, message", [("", "expected sizes"), ("a-b", "expected sizes"), ("0-3", "positive"), ("1;2", "expected sizes"),
                                           ("1-", "expected sizes"), ("1,,2", "expected sizes"), ("1-2-3", "expected sizes"),
                                           ("16-1", "the range '16-1' runs backwards; write it 1-16"),
                                           ("1-1000000000", "batch sizes go up to 65,536, got 1,000,000,000")])
def test_parse_batches_rejects(text, message):
    with pytest.raises(InputError, match=f"^batches: .*{message}"):
        parse_batches(text)


def test_a_grid_past_the_cell_limit_is_refused_before_anything_is_built():
    check_grid(list(range(1, 17)), PrefillGrid(1, 700, 10), 1024)  # the paper's grid
    check_grid([1], PrefillGrid(1, 2, 1), MAX_CELLS - 1)  # exactly at the limit
    with pytest.raises(InputError, match=r"give 1,000,001 cells \(1 batch x \(1 prefill lengths \+ 1,000,000 decode steps\)\)"):
        check_grid([1], PrefillGrid(1, 2, 1), MAX_CELLS)
    with pytest.raises(InputError, match="16,000,016,368 cells"):  # a range never listed (it would not fit in memory)
        check_grid(list(range(1, 17)), PrefillGrid(1, 10**9, 1), 1024)


@pytest.mark.parametrize("text", ["1:700", "0:700:10", "1:700:0", "10:5:1", "x:y:z"])
def test_parse_range_rejects(text):
    with pytest.raises(InputError, match="^prefill_lengths: "):
        parse_range(text)


def test_the_shortest_grid_reaching_a_prompt_answers_it_and_one_step_less_does_not():
    grid = PrefillGrid.reaching(1146, 1, 10)
    assert str(grid) == "1:1142:10" and grid.lengths[grid.index(1146)] == 1141  # Eq. 1's t~^P(1146) = t^P(1141)
    assert len(PrefillGrid(1, grid.stop - 1, 10).lengths) == grid.index(1146)  # one point short
    assert str(PrefillGrid.reaching(700, 1, 10)) == "1:702:10" and PrefillGrid.reaching(699, 1, 10) == PrefillGrid(1, 692, 10)
