"""Where two tables' metadata differ: the first differing leaf, for refusals that name the field."""

from __future__ import annotations


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()  # a key one side lacks, told apart from a recorded None


def first_difference(path: str, a, b):
    """(dotted path, a's value, b's value) of the first leaf where a and b differ, in a's key order
    (a table's metadata: architecture name before its config); ("", ...) if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            found = first_difference(f"{path}.{key}" if path else str(key), a.get(key, MISSING), b.get(key, MISSING))
            if found[0]:
                return found
        return "", a, b
    return (path, a, b) if a != b else ("", a, b)


def short(value) -> str:
    """repr, cut to one readable line."""
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."
