#!/usr/bin/env python3
"""Check the relative links of README.md and docs/**/*.md: every linked file exists, and every
#anchor names a heading of the linked Markdown file (GitHub's heading slugs). Links that leave the
repository (../shared/...) are listed, not checked; http(s) and mailto links are skipped.

Run: python3 packaging/check_links.py     (exit 1 on a broken link)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!\\)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def strip_code(text: str) -> str:
    """Drop fenced code blocks and inline code, where brackets are not links."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            out.append("")
            continue
        out.append("" if in_fence else re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def slugs(path: Path) -> set:
    seen, out, in_fence = {}, set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
        if in_fence:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))  # link text only
        slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def main() -> int:
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    errors, outside, checked = [], set(), 0
    for md in files:
        for target in LINK.findall(strip_code(md.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue
            checked += 1
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md
            where = f"{md.relative_to(ROOT)}: ({target})"
            if ROOT not in dest.parents and dest != ROOT:
                outside.add(f"{path_part}")
                continue
            if not dest.exists():
                errors.append(f"{where}: {path_part} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in slugs(dest):
                errors.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    for e in errors:
        print("check_links:", e, file=sys.stderr)
    note = f"; outside the repository, not checked: {', '.join(sorted(outside))}" if outside else ""
    print(f"check_links: {checked} relative links in {len(files)} files, {len(errors)} broken{note}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
