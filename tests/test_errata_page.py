"""The errata page's summary table agrees with the entries below it.

``chapters/errata.md`` opens with a table of entries per source and severity. The counts
are typed, so this test counts the severity badges of the entries under each source's
section and fails if any cell of the table (or a total) differs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ERRATA = Path(__file__).resolve().parents[1] / "chapters" / "errata.md"
SEVERITIES = ("danger", "warning", "info")
ENTRY = re.compile(r"^- \*\*.+?\*\* \{bdg-(danger|warning|info)\}`[^`]+`\s*$")


def sections(text: str) -> dict[str, list[str]]:
    """Each ``## `` section's title and its lines (comments removed)."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found


def badge_counts(lines: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for line in lines:
        match = ENTRY.match(line)
        if match:
            counts[match.group(1)] += 1
    return counts


def summary_table(text: str) -> dict[str, list[int]]:
    """The rows of the first table whose header names the three severities: source -> counts."""
    rows: dict[str, list[int]] = {}
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("| Source |") and all(f"bdg-{s}" in line for s in SEVERITIES):
            for row in lines[k + 2:]:
                if not row.startswith("|"):
                    break
                cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
                rows[cells[0]] = [int(cell) for cell in cells[1:]]
            return rows
    raise AssertionError("no summary table with the three severity badges in errata.md")


def test_every_entry_has_a_recognised_severity_badge():
    text = ERRATA.read_text(encoding="utf-8")
    for lines in sections(text).values():
        for line in lines:
            if line.startswith("- **"):
                assert ENTRY.match(line), f"an entry without one of the three badges: {line[:80]}"


def check_summary(text: str) -> None:
    """Raise AssertionError where the summary table and the badges disagree."""
    table = summary_table(text)
    found = {title: badge_counts(lines) for title, lines in sections(text).items()}
    sources = [title for title in table if title != "all five"]
    assert sorted(sources) == sorted(found), "the table must have one row per source section"
    totals = dict.fromkeys(SEVERITIES, 0)
    for title in sources:
        counts = found[title]
        expected = [counts[s] for s in SEVERITIES] + [sum(counts.values())]
        assert table[title] == expected, f"{title}: table says {table[title]}, the entries give {expected}"
        for s in SEVERITIES:
            totals[s] += counts[s]
    assert table["all five"] == [totals[s] for s in SEVERITIES] + [sum(totals.values())], "all five"


def test_summary_table_matches_the_badges():
    check_summary(ERRATA.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("- **Adam: the margin note's citation** {bdg-danger}", "- **Adam: the margin note's citation** {bdg-info}",
         "table says"),
        ("| all five | ", "| all five | 1", "all five"),
    ],
)
def test_the_check_fails_when_table_and_badges_disagree(old, new, message):
    # the same check on the page with one badge or one total changed
    text = ERRATA.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(AssertionError, match=message):
        check_summary(text.replace(old, new, 1))
