"""Pull example payloads out of the docs so tests (decoder now, HTTP later) run exactly them.

An example is a fenced block whose info string is exactly ```json <tag>. For
``json invalid-event`` blocks the line right after the closing fence must be
``<!-- field: NAME -->``: the field the error has to name.
"""

import re
from pathlib import Path

_FENCE = "```"
_FIELD_COMMENT = re.compile(r"<!--\s*field:\s*(?P<field>\S+)\s*-->")


def load_examples(path: Path, tag: str) -> list[tuple[bytes, str | None]]:
    """Every ```json <tag> block in `path` as (payload bytes, expected field or None).

    The field is read from a `<!-- field: NAME -->` comment on the line right after the
    block; a block tagged `invalid-event` without one is a docs bug and raises ValueError.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    opener = f"{_FENCE}json {tag}"
    examples: list[tuple[bytes, str | None]] = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip() != opener:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != _FENCE:
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: unclosed ```json {tag} block")
        payload = "\n".join(lines[start:end]).encode("utf-8")
        field = None
        if end + 1 < len(lines) and (match := _FIELD_COMMENT.fullmatch(lines[end + 1].strip())):
            field = match.group("field")
        if tag == "invalid-event" and field is None:
            raise ValueError(f"{path}:{i + 1}: invalid-event block without <!-- field: NAME -->")
        examples.append((payload, field))
        i = end + 1
    return examples
