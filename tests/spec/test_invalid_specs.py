"""The corpus of broken specs in tests/specs/invalid/: one file per class of error.

Each file states what `cnngraph check` must report in header lines of the form
    # error: LINE | message substring | hint substring
(LINE may be `other/file.yaml:LINE` for an error located in an included file). The check must
exit with 1, print no traceback, and report every listed error at its line, with its hint.
"""
from pathlib import Path

import pytest

INVALID = Path(__file__).resolve().parent.parent / "specs" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def expectations(path: Path):
    for line in path.read_text().splitlines():
        if line.startswith("# error:"):
            parts = [p.strip() for p in line[len("# error:"):].split("|")]
            where, message, hint = (parts + [""])[:3]
            yield where, message, hint


def problem_blocks(output: str) -> list[str]:
    """Split `check` output into one text block per reported problem."""
    blocks = []
    for line in output.splitlines():
        if ": error: " in line:
            blocks.append(line)
        elif blocks:
            blocks[-1] += "\n" + line
    return blocks


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_spec_is_reported(path, cli):
    expected = list(expectations(path))
    assert expected, f"{path.name} states no expected error"
    result = cli("check", path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    blocks = problem_blocks(result.output)
    for where, message, hint in expected:
        file, _, line = where.rpartition(":")
        prefix = f"{(INVALID / file) if file else path}:{line}:"
        found = [b for b in blocks if b.startswith(prefix) and message in b.splitlines()[0]]
        assert found, f"expected {prefix} ... {message!r} in:\n{result.output}"
        assert hint in found[0], f"expected hint {hint!r} in:\n{found[0]}"
    assert len(blocks) == len(expected), result.output


def test_corpus_covers_the_error_classes():
    assert len(CASES) >= 30
