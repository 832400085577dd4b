"""The surface a newcomer meets (issue 14): README commands name files that exist, the
default data directory is ignored by git, `payguard --version` answers."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from payguard.config import load_settings

REPO = Path(__file__).resolve().parents[1]
OUTPUT_OPTIONS = {"-o", "--out", "--html", "--json", "--data-dir"}
"""Options whose value a command writes (simulate's --labels too), not reads."""
FILE_LIKE = re.compile(r"^[\w./-]+\.(json|jsonl|yaml|yml|toml|csv)$")


def readme_commands() -> list[list[str]]:
    """Each shell line of README's fenced blocks, split as the shell would (comments off)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```(?:sh|bash|shell|console)?\n(.*?)^```", text, re.S | re.M)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        for part in re.split(r"\s[|;]\s|\s&&\s", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            if words:
                commands.append(words)
    return commands


def files_read_and_written(words: list[str]) -> tuple[list[str], list[str]]:
    read, written = [], []
    outputs = OUTPUT_OPTIONS | ({"--labels"} if "simulate" in words else set())
    for before, word in zip(["", *words], words, strict=False):
        name = word.removeprefix("@")
        if before in outputs:
            written.append(name)
        elif name != "-" and (before == "<" or word.startswith("@") or FILE_LIKE.match(name)):
            read.append(name)
    return read, written


def test_readme_commands_name_files_that_exist() -> None:
    produced: set[str] = set()
    missing = []
    commands = readme_commands()
    assert len(commands) > 10  # the extraction found the examples
    for words in commands:
        read, written = files_read_and_written(words)
        missing += [f"{name} in {' '.join(words)}" for name in read if name not in produced]
        missing = [m for m in missing if not (REPO / m.split(" in ")[0]).exists()]
        produced.update(written)
    assert not missing, missing


def test_the_extraction_sees_reads_and_writes() -> None:
    """The checker itself: `<` and `@` read, `-o` writes, a bare `.jsonl` reads."""
    words = shlex.split("payguard replay a.jsonl -o b.jsonl")
    assert files_read_and_written(words) == (["a.jsonl"], ["b.jsonl"])
    assert files_read_and_written(["curl", "-d", "@e.json"]) == (["e.json"], [])
    assert files_read_and_written(["decide", "<", "x.json"]) == (["x.json"], [])


def test_default_data_directory_is_ignored_by_git() -> None:
    default = load_settings(env={}).data_dir
    assert not default.is_absolute()
    for path in (str(default), f"{default}/events.db"):
        found = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=REPO, check=False, capture_output=True
        )
        assert found.returncode == 0, f"{path} is not ignored"


def test_version() -> None:
    shown = subprocess.run(
        [sys.executable, "-c", "from payguard.cli.main import main; main()", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.fullmatch(r"payguard \d+\.\d+\.\d+\S*\n", shown.stdout)
