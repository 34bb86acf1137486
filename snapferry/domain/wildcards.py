"""The pattern language of policies: `*` and `?` wildcards and `${...}` policy variables.

A pattern compiles to a regular expression. Variables are replaced by the request's value,
escaped, so a user named `a*` matches only `a*` and not everything. `${*}`, `${?}` and `${$}`
stand for the literal characters. A variable the request does not carry (and that has no
default, `${aws:username, 'nobody'}`) makes the pattern match nothing: a policy about "my own
folder" must not apply to a caller who has no name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_TOKEN = re.compile(r"\$\{([^}]*)\}|\*|\?")
_DEFAULT = re.compile(r"\s*([^,]+?)\s*,\s*'([^']*)'\s*")
_LITERAL = {"*": "*", "?": "?", "$": "$"}

Lookup = Callable[[str], str | None]


class MissingVariable(Exception):
    """A pattern names a policy variable the request does not carry."""


def substitute(pattern: str, lookup: Lookup | None) -> str:
    """`pattern` with its variables replaced (no wildcards interpreted): for values that are
    compared whole, not matched, such as a condition's ARN or number."""
    return "".join(_pieces(pattern, lookup, wildcards=False))


def _pieces(pattern: str, lookup: Lookup | None, wildcards: bool) -> list[str]:
    """Regex pieces (wildcards=True) or plain text pieces of `pattern`."""
    out: list[str] = []
    at = 0
    for token in _TOKEN.finditer(pattern):
        literal = pattern[at:token.start()]
        out.append(re.escape(literal) if wildcards else literal)
        at = token.end()
        text = token.group(0)
        if text in ("*", "?"):
            out.append((".*" if text == "*" else ".") if wildcards else text)
            continue
        if lookup is None:  # policy Version 2008-10-17: no variables, the text is literal
            out.append(re.escape(text) if wildcards else text)
            continue
        value = _variable(token.group(1), lookup)
        out.append(re.escape(value) if wildcards else value)
    tail = pattern[at:]
    out.append(re.escape(tail) if wildcards else tail)
    return out


def _variable(name: str, lookup: Lookup) -> str:
    if name in _LITERAL:
        return _LITERAL[name]
    default = None
    with_default = _DEFAULT.fullmatch(name)
    if with_default:
        name, default = with_default.group(1), with_default.group(2)
    value = lookup(name.strip())
    if value is None:
        value = default
    if value is None:
        raise MissingVariable(name)
    return value


@lru_cache(maxsize=4096)
def _static(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile("".join(_pieces(pattern, None, True)),
                      re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def compile_pattern(pattern: str, lookup: Lookup | None = None,
                    ignore_case: bool = False) -> re.Pattern[str] | None:
    """The regex of `pattern`, or None when it names a variable the request lacks."""
    if lookup is None or "${" not in pattern:
        return _static(pattern, ignore_case)
    try:
        regex = "".join(_pieces(pattern, lookup, True))
    except MissingVariable:
        return None
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, lookup: Lookup | None = None,
            ignore_case: bool = False) -> bool:
    """Whether `value` matches the wildcard `pattern` as a whole."""
    regex = compile_pattern(pattern, lookup, ignore_case)
    return regex is not None and regex.fullmatch(value) is not None
