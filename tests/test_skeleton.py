"""parse_skeleton on the paper's examples and its failure cases (§3.2, App. A.2)."""

import re

from sotlat.sot.skeleton import parse_skeleton

PAPER_REGEX = r"(\d+)\.\s?([\s\S]+?)(?=\n|\n*$)"  # App. A.2


def test_demonstration_skeleton_of_prompt_1():
    text = "1. Dumplings.\n2. Noodles.\n3. Dim Sum.\n4. Hot Pot.\n5. Wonton.\n6. Ma Po Tofu.\n7. Char Siu.\n8. Fried Rice."
    assert parse_skeleton(text) == [(1, "Dumplings."), (2, "Noodles."), (3, "Dim Sum."), (4, "Hot Pot."), (5, "Wonton."),
                                    (6, "Ma Po Tofu."), (7, "Char Siu."), (8, "Fried Rice.")]


def test_bold_points_and_two_digit_indices():
    text = "\n".join(f"{i}. **Point {i}.**" for i in range(1, 12))  # the jazz script answer has 11 points
    points = parse_skeleton(text)
    assert [i for i, _ in points] == list(range(1, 12)) and points[9] == (10, "Point 10.")


def test_prose_after_the_list_is_not_part_of_the_last_point():
    # Claude's coding answer in §3.2: "5. **Close file**" then a paragraph
    text = ("1. **Open file stream**\n2. **Read line**\n3. **Find word**\n4. **Increment counter**\n5. **Close file**\n\n"
            "The file stream should be closed after finishing reading the file to free up resources.")
    assert parse_skeleton(text)[-1] == (5, "Close file")
    assert len(parse_skeleton(text)) == 5


def test_code_block_after_the_list_is_ignored():
    # OpenChat-13B's coding answer in §3.2: three points, then code and prose
    text = ("1. **Read file line by line.**\n2. **Store lines in a container.**\n3. **Count occurrences of specific word.**\n\n"
            "```cpp\n#include <fstream>\nint main() { return 0; }\n```\n\nThis code uses the C++ standard library.")
    assert parse_skeleton(text) == [(1, "Read file line by line."), (2, "Store lines in a container."), (3, "Count occurrences of specific word.")]


def test_repeated_partial_answer_is_dropped():
    # ChatGPT-3.5 repeats the partial answer "1." (§3.2 footnote, App. A.3)
    assert parse_skeleton("1. 1. Move all x terms to one side.\n2. Move all constant terms to the other side.")[0] == (1, "Move all x terms to one side.")


def test_decimal_in_prose_is_not_a_point_unlike_the_paper_regex():
    text = "1. Blink rate.\n2. Waking hours.\nThat is about 10.5 minutes of blinking a day."
    assert parse_skeleton(text) == [(1, "Blink rate."), (2, "Waking hours.")]
    assert "10" in [m[0] for m in re.findall(PAPER_REGEX, text)]  # the paper's regex makes it point 10


def test_first_occurrence_wins_when_the_model_repeats_the_skeleton():
    text = "1. Energy.\n2. Transport.\n\nQuestion:\nWhat else?\nSkeleton:\n1. Diet.\n2. Travel.\n3. Water."
    assert parse_skeleton(text) == [(1, "Energy."), (2, "Transport."), (3, "Water.")]


def test_indentation_bullets_and_crlf():
    assert parse_skeleton("  1. Alpha\r\n\t2. Beta\r\n- 3. Gamma\r\n") == [(1, "Alpha"), (2, "Beta"), (3, "Gamma")]


def test_no_points():
    assert parse_skeleton("I'm sorry, I cannot answer that.") == []
    assert parse_skeleton("") == []
    assert parse_skeleton("1.\n2.") == []  # indices without text
