"""Step expressions of precision queues: a small language over agent attributes.

    billing >= 5 and (english or not spanish)

Attributes are booleans or proficiencies (1-10). A name the agent lacks is false, and 0
in a comparison. Grammar (a recursive-descent parser; never `eval`):

    expr := and ('or' and)*        and := not ('and' not)*      not := 'not' not | cmp
    cmp  := atom (('=='|'!='|'<'|'<='|'>'|'>=') atom)?
    atom := NUMBER | 'true' | 'false' | NAME | '(' expr ')'
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

Attributes = dict[str, Any]
Predicate = Callable[[Attributes], bool]

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_-]*)|(==|!=|<=|>=|<|>|\(|\)))")
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_KEYWORDS = {"and", "or", "not", "true", "false"}


class ExprError(ValueError):
    pass


@dataclass(frozen=True)
class Expression:
    text: str
    test: Predicate
    names: frozenset[str]      # the attributes it mentions

    def __call__(self, attributes: Attributes) -> bool:
        return self.test(attributes)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExprError(f"unexpected {text[pos:].strip()[:10]!r} at column {pos + 1} of {text!r}")
        out.append(match.group(match.lastindex or 0))
        pos = match.end()
    return out


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return 0.0


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.names: set[str] = set()

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExprError(f"{self.text!r} ends too early")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            raise ExprError("an empty expression")
        node = self.disjunction()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()!r} in {self.text!r}")
        return lambda attrs: bool(node(attrs))

    def disjunction(self) -> Callable[[Attributes], Any]:
        terms = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda a: any(t(a) for t in terms))

    def conjunction(self) -> Callable[[Attributes], Any]:
        terms = [self.negation()]
        while self.peek() == "and":
            self.take()
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else (lambda a: all(t(a) for t in terms))

    def negation(self) -> Callable[[Attributes], Any]:
        if self.peek() == "not":
            self.take()
            inner = self.negation()
            return lambda a: not inner(a)
        return self.comparison()

    def comparison(self) -> Callable[[Attributes], Any]:
        left = self.atom()
        if self.peek() in _COMPARE:
            compare = _COMPARE[self.take()]
            right = self.atom()
            return lambda a: compare(_number(left(a)), _number(right(a)))
        return left

    def atom(self) -> Callable[[Attributes], Any]:
        token = self.take()
        if token == "(":
            inner = self.disjunction()
            if self.take() != ")":
                raise ExprError(f"missing ')' in {self.text!r}")
            return inner
        if token in ("true", "false"):
            value = token == "true"
            return lambda a: value
        if token[0].isdigit():
            number = float(token)
            return lambda a: number
        if token in _KEYWORDS or token in _COMPARE or token == ")":
            raise ExprError(f"expected a name, a number or '(' but found {token!r} in {self.text!r}")
        self.names.add(token)
        return lambda a: a.get(token, False)


def compile_expr(text: str) -> Expression:
    parser = _Parser(text)
    test = parser.parse()
    return Expression(text, test, frozenset(parser.names))


def skill(attributes: Attributes, names: frozenset[str]) -> float:
    """The sum of the proficiencies (numbers, not booleans) among `names`."""
    return sum(float(v) for n in names if not isinstance(v := attributes.get(n), bool)
               and isinstance(v, (int, float)))
