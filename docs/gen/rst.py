"""Module docstrings (reStructuredText habits: double backticks, roles, ``::`` literal blocks) as markdown."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|obj):`~?([^`]+)`")
LITERAL = re.compile(r"``([^`]+)``")


def inline(text: str) -> str:
    """Roles and double backticks as markdown code spans: ``:func:`~zoo.wrap``` -> `zoo.wrap`."""
    return LITERAL.sub(r"`\1`", ROLE.sub(r"``\1``", text))


def _fence(block: list[str]) -> list[str]:
    """An indented literal block as a fenced one, its common indent removed and its trailing blank lines dropped."""
    while block and not block[-1].strip():
        block.pop()
    while block and not block[0].strip():
        block.pop(0)
    if not block:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    return ["```text", *(line[indent:] for line in block), "```"]


def markdown(docstring: str) -> str:
    """``docstring`` as markdown: ``text::`` plus an indented block becomes ``text:`` and a fenced block; a list
    right after a paragraph line gets the blank line markdown needs."""
    lines, out, i = docstring.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            text = line.rstrip()[:-2].rstrip()
            out.append(inline(text + ":") if text else "")
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            out += ["", *_fence(block), ""]
            continue
        if line.startswith("- ") and out and out[-1].strip() and not out[-1].startswith(("- ", " ")):
            out.append("")
        out.append(inline(line))
        i += 1
    return "\n".join(out).strip() + "\n"
