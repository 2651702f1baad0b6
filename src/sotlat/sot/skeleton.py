"""Extract the numbered points of a skeleton response.

The paper's regex, (\\d+)\\.\\s?([\\s\\S]+?)(?=\\n|\\n*$), matches anywhere in the text, so a
decimal in prose ("about 10.5 minutes") becomes point 10. Here a point is a line that *starts*
with its number: "N." not followed by a digit, after optional indentation, list bullets or bold
markers; CRLF is allowed. The first occurrence of an index wins (models sometimes repeat the
skeleton or continue with the prompt's demonstrations), prose lines after the list belong to no
point, bold markers are removed, and a repeated "N." (the partial answer echoed) is dropped.
"""

from __future__ import annotations

import re

_POINT = re.compile(r"^[ \t]*(?:[-+][ \t]+)?(?:\*\*|__)?(\d+)\.(?!\d)(?:\*\*|__)?[ \t]*(.*?)[ \t]*$")
_MARKUP = re.compile(r"\*\*|__")


def parse_skeleton(text: str) -> list[tuple[int, str]]:
    """(index, point text) in index order; [] when the text has no numbered points."""
    points: dict[int, str] = {}
    for line in text.splitlines():
        match = _POINT.match(line)
        if not match:
            continue
        index, body = int(match.group(1)), _MARKUP.sub("", match.group(2)).strip()
        body = re.sub(rf"^{index}\.(?!\d)\s*", "", body)  # the partial answer "1." repeated by the model
        if body and index not in points:
            points[index] = body
    return sorted(points.items())
