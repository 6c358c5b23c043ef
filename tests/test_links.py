"""Every relative link in every tracked Markdown file resolves inside the repository.

A link is `[text](target)`, `![alt](target)` or a reference definition `[label]: target`,
outside fenced code blocks and inline code.  Absolute URLs (http:, https:, mailto:) are not
fetched.  A relative target must name a file or folder that exists in the repository and
stays inside it; `#anchor` (alone or after a .md file) must name a heading of that file.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def tracked_markdown() -> list[Path]:
    try:
        names = subprocess.run(
            ["git", "ls-files", "*.md"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist)
        return sorted(
            p
            for p in ROOT.rglob("*.md")
            if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
        )
    return [ROOT / name for name in names]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code removed."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, INLINE_CODE.sub("", line)


def links(text: str):
    for number, line in prose_lines(text):
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            yield number, definition.group(1)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"[*_`]|<[^>]+>", "", heading)
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    kept = "".join(c for c in heading.lower() if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            slug = anchor(heading.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        file_part, _, fragment = unquote(target).partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.is_relative_to(ROOT):
            problems.append(f"{where} (points outside the repository)")
        elif not destination.exists():
            problems.append(f"{where} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{where} (no heading #{fragment} in {destination.name})")
    return problems


MARKDOWN = tracked_markdown()


def test_markdown_files_found():
    assert ROOT / "README.md" in MARKDOWN
    assert ROOT / "docs" / "spec.md" in MARKDOWN


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path):
    assert broken_links(path) == []


def test_the_checker_finds_broken_links(tmp_path, monkeypatch):
    """The checks above can fail: a missing file, a path out of the repository and a missing
    anchor are each reported; a URL, a link in code and a good anchor are not."""
    page = ROOT / "docs" / "spec.md"
    text = (
        "# A title\n[ok](#a-title) [url](https://example.org/x) `[code](nothere.md)`\n"
        "[gone](nothere.md) ![out](../../outside.png) [bad](spec.md#no-such-heading)\n"
        "```\n[fenced](nothere.md)\n```\n[ref]: missing/folder/\n"
    )
    monkeypatch.setattr(
        Path,
        "read_text",
        lambda self, encoding=None: (
            text if self == page else Path.read_bytes(self).decode(encoding or "utf-8")
        ),
    )
    problems = broken_links(page)
    assert [p.split(": ", 1)[1].split(" (")[0] for p in problems] == [
        "nothere.md",
        "../../outside.png",
        "spec.md#no-such-heading",
        "missing/folder/",
    ]
