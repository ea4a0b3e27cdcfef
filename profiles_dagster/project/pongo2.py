"""pb's template language (pongo2) translated to Jinja2 source with pongo2's meaning.

pb renders templates with pongo2, a Go engine close to Django's; Jinja2 reads most of it but not all
(`!x`, `&&`, `||`, `{% with a = x b = y %}`, `|filter:arg`), and where both read a form they do not
always agree on its meaning: pongo2's `and`/`or` have one precedence and group to the right, `!x == y`
negates `x` before comparing, `and`/`or` give booleans, `==` never equates an int with a float, and a
float prints as `%f`. So each tag is tokenized (string literals stay whole), parsed with pongo2's
grammar and written back as Jinja2 with every operator as an explicit call to a helper of
`pongo2_runtime`. Text outside tags is copied as is and every newline stays where it was, so a line of
the Jinja2 source is the same line of the pb template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# pongo2's symbols, longest first (lexer.go), and the brackets of pb's list literals (`prereqs=[a]`)
_SYMBOLS = ("==", ">=", "<=", "&&", "||", "!=", "<>", "(", ")", "+", "-", "*", "<", ">", "/", "^", ",", ".", "!")
_SYMBOLS += ("|", ":", "=", "%", "[", "]")
_KEYWORDS = frozenset({"in", "and", "or", "not", "true", "false", "as", "export"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_DIGITS = re.compile(r"[0-9]+")

# pongo2's built-in filters (and pb's `isnil`) that pongo2_runtime gives pongo2's meaning
FILTERS = frozenset(
    {"isnil", "default", "default_if_none", "length", "lower", "upper", "join", "safe", "stringformat"}
    | {"first", "last", "add", "cut", "integer", "float"}
)
# pongo2's tags that pb projects have no use for, refused by name rather than read another way
_UNSUPPORTED_TAGS = frozenset(
    {
        "autoescape",
        "block",
        "cycle",
        "extends",
        "filter",
        "firstof",
        "ifchanged",
        "ifequal",
        "ifnotequal",
        "import",
        "include",
        "lorem",
        "now",
        "spaceless",
        "ssi",
        "templatetag",
        "widthratio",
    }
)
_JINJA_LITERALS = frozenset({"True", "False", "None", "none"})
_PLAIN_END_TAGS = frozenset({"else", "endif", "endfor", "endwith", "endmacro"})


class Pongo2SyntaxError(Exception):
    """A template pongo2 would not parse, or a construct this translation cannot give pongo2's meaning."""

    def __init__(self, message: str, line: int) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class _Token:
    kind: str  # name, keyword, number, string, symbol
    value: str
    line: int


def translate(text: str) -> str:
    """The Jinja2 source that renders `text` as pongo2 would (see the module docstring)."""
    out: list[str] = []
    pos, line = 0, 1
    skipping = False  # inside {% comment %} ... {% endcomment %}
    while True:
        start = _next_open(text, pos)
        chunk = text[pos : start if start >= 0 else len(text)]
        if not skipping:
            out.append(chunk)
        else:
            out.append("\n" * chunk.count("\n"))
        line += chunk.count("\n")
        if start < 0:
            if skipping:
                raise Pongo2SyntaxError("{% comment %} is not closed by {% endcomment %}", line)
            return "".join(out)
        opener = text[start : start + 2]
        if opener == "{#":
            end = text.find("#}", start + 2)
            newline = text.find("\n", start + 2)
            if end < 0 or (0 <= newline < end):
                raise Pongo2SyntaxError("a {# comment #} must close on its own line", line)
            pos = end + 2
            continue
        tokens, trim_left, trim_right, pos = _lex_tag(text, start, line)
        closer = "}}" if opener == "{{" else "%}"
        left = opener + ("-" if trim_left else "")
        right = ("-" if trim_right else "") + closer
        if opener == "{{":
            body = _Parser(tokens, line).whole_expression()
            if not skipping:
                out.append(f"{left} {body} {right}")
            continue
        name = tokens[0].value if tokens else ""
        if skipping:
            skipping = name != "endcomment"
            continue
        if name == "comment":
            skipping = True
            continue
        out.append(f"{left} {_tag(name, tokens, line)} {right}")


def _next_open(text: str, pos: int) -> int:
    found = [i for i in (text.find(o, pos) for o in ("{{", "{%", "{#")) if i >= 0]
    return min(found) if found else -1


def _lex_tag(text: str, start: int, line: int) -> tuple[list[_Token], bool, bool, int]:
    """The tokens of the tag at `start` (after `{{`/`{%`), its trim marks, and where the text resumes."""
    closer = "}}" if text[start + 1] == "{" else "%}"
    i = start + 2
    trim_left = text.startswith("-", i)
    i += trim_left
    tokens: list[_Token] = []
    while True:
        if i >= len(text):
            raise Pongo2SyntaxError(f"tag opened with '{text[start : start + 2]}' is never closed", line)
        c = text[i]
        if c == "\n":
            raise Pongo2SyntaxError("a newline is not allowed inside a tag or {{ }} (pongo2)", line)
        if c in " \t\r":
            i += 1
            continue
        if text.startswith("-" + closer, i):
            return tokens, trim_left, True, i + 3
        if text.startswith(closer, i):
            return tokens, trim_left, False, i + 2
        if c in "\"'":
            value, i = _lex_string(text, i, line)
            tokens.append(_Token("string", value, line))
            continue
        match = _IDENT.match(text, i) or _DIGITS.match(text, i)
        if match:
            word = match.group()
            if word[0].isdigit():
                ident = re.compile(r"[0-9]+[A-Za-z_][A-Za-z_0-9]*").match(text, i)  # pongo2: `1st` is a name
                if ident:
                    word = ident.group()
            kind = "keyword" if word in _KEYWORDS else ("number" if word.isdigit() else "name")
            tokens.append(_Token(kind, word, line))
            i += len(word)
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is None:
            raise Pongo2SyntaxError(f"unexpected character {c!r} in a tag", line)
        tokens.append(_Token("symbol", symbol, line))
        i += len(symbol)


def _lex_string(text: str, i: int, line: int) -> tuple[str, int]:
    """A string literal in either quote; pongo2 knows only the escapes `\\"` and `\\\\`."""
    quote = text[i]
    i += 1
    value: list[str] = []
    while True:
        if i >= len(text) or text[i] == "\n":
            raise Pongo2SyntaxError("string literal is not closed on its line", line)
        c = text[i]
        if c == quote:
            return "".join(value), i + 1
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\"):
                raise Pongo2SyntaxError(
                    f'unknown escape sequence \\{nxt} in a string (pongo2 knows \\" and \\\\)', line
                )
            value.append(nxt)
            i += 2
            continue
        value.append(c)
        i += 1


def _tag(name: str, tokens: list[_Token], line: int) -> str:
    """One `{% %}` tag as Jinja2 (without its delimiters)."""
    args = tokens[1:]
    if name in ("if", "elif"):
        return f"{name} {_Parser(args, line).whole_expression()}"
    if name in _PLAIN_END_TAGS:
        if args:
            raise Pongo2SyntaxError(f"{{% {name} %}} takes no arguments", line)
        return name
    if name == "empty":  # a for loop's branch for no items
        return "else"
    if name == "with":
        return "with " + _with(args, line)
    if name == "set":
        parser = _Parser(args, line)
        target = parser.expect_name()
        parser.expect("symbol", "=")
        return f"set {target} = {parser.whole_expression()}"
    if name == "for":
        return _for(args, line)
    if name == "macro":
        return _macro(args, line)
    if name == "exec":
        raise Pongo2SyntaxError("pb's {% exec %} tag (Python run by pb) is not supported", line)
    if name in _UNSUPPORTED_TAGS:
        raise Pongo2SyntaxError(f"the pongo2 tag {{% {name} %}} is not supported", line)
    raise Pongo2SyntaxError(f"unknown tag {{% {name} %}}" if name else "empty tag {% %}", line)


def _with(args: list[_Token], line: int) -> str:
    """pongo2's `with a = x b = y` (no commas) or the old `x as a y as b`."""
    if not args:
        raise Pongo2SyntaxError("{% with %} needs at least one assignment", line)
    parser = _Parser(args, line)
    old_style = any(t.kind == "keyword" and t.value == "as" for t in args)
    pairs: list[str] = []
    while not parser.done():
        if old_style:
            value = parser.expression()
            parser.expect("keyword", "as")
            pairs.append(f"{parser.expect_name()} = {value}")
        else:
            target = parser.expect_name()
            parser.expect("symbol", "=")
            pairs.append(f"{target} = {parser.expression()}")
    return ", ".join(pairs)


def _for(args: list[_Token], line: int) -> str:
    """`for x in seq [reversed] [sorted]` and `for k, v in map`: pongo2's order and its `forloop`."""
    parser = _Parser(args, line)
    targets = [parser.expect_name()]
    if parser.accept("symbol", ","):
        targets.append(parser.expect_name())
    parser.expect("keyword", "in")
    seq = parser.expression()
    flags = []
    while not parser.done():
        flags.append(parser.expect_name())
    if any(f not in ("reversed", "sorted") for f in flags):
        raise Pongo2SyntaxError(f"unexpected {flags} after a for loop's sequence", line)
    helper = "pb_items" if len(targets) == 2 else "pb_iter"
    reverse, ordered = "reversed" in flags, "sorted" in flags
    loop = f"for {', '.join(targets)} in {helper}({seq}, {reverse}, {ordered})"
    return loop + " %}{% set forloop = pb_forloop(loop)"


def _macro(args: list[_Token], line: int) -> str:
    """`macro name(a, b=literal) [export]`: Jinja2 reads the same, without `export`."""
    parser = _Parser(args, line)
    name = parser.expect_name()
    parser.expect("symbol", "(")
    params: list[str] = []
    while not parser.accept("symbol", ")"):
        param = parser.expect_name()
        if parser.accept("symbol", "="):
            param += f"={parser.expression()}"
        params.append(param)
        if not parser.accept("symbol", ","):
            parser.expect("symbol", ")")
            break
    parser.accept("keyword", "export")
    if not parser.done():
        raise Pongo2SyntaxError("unexpected tokens after a macro's arguments", line)
    return f"macro {name}({', '.join(params)})"


class _Parser:
    """pongo2's expression grammar (parser_expression.go), written back as Jinja2 calls to its helpers."""

    def __init__(self, tokens: list[_Token], line: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.line = line

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def peek(self, kind: str, *values: str) -> _Token | None:
        if self.done():
            return None
        token = self.tokens[self.i]
        return token if token.kind == kind and (not values or token.value in values) else None

    def accept(self, kind: str, *values: str) -> _Token | None:
        token = self.peek(kind, *values)
        if token is not None:
            self.i += 1
        return token

    def expect(self, kind: str, value: str) -> _Token:
        token = self.accept(kind, value)
        if token is None:
            raise self.error(f"expected '{value}'")
        return token

    def expect_name(self) -> str:
        token = self.accept("name")
        if token is None:
            raise self.error("expected a name")
        return token.value

    def error(self, message: str) -> Pongo2SyntaxError:
        got = f"'{self.tokens[self.i].value}'" if not self.done() else "the end of the tag"
        return Pongo2SyntaxError(f"{message}, got {got}", self.line)

    def whole_expression(self) -> str:
        if self.done():
            raise self.error("expected an expression")
        result = self.expression()
        if not self.done():
            raise self.error("unexpected token after the expression")
        return result

    def expression(self) -> str:
        # `and`/`or`/`&&`/`||`: one precedence, grouped to the right, a boolean result
        left = self.relational()
        op = self.accept("symbol", "&&", "||") or self.accept("keyword", "and", "or")
        if op is None:
            return left
        right = self.expression()
        jinja_op = "and" if op.value in ("&&", "and") else "or"
        return f"pb_bool(pb_bool({left}) {jinja_op} pb_bool({right}))"

    def relational(self) -> str:
        left = self.simple()
        op = self.accept("symbol", "==", "<=", ">=", "!=", "<>", ">", "<")
        if op is not None:
            right = self.relational()
            if op.value == "==":
                return f"pb_eq({left}, {right})"
            if op.value in ("!=", "<>"):
                return f"(not pb_eq({left}, {right}))"
            return f"pb_compare({op.value!r}, {left}, {right})"
        if self.accept("keyword", "in"):
            return f"pb_contains({self.simple()}, {left})"
        return left

    def simple(self) -> str:
        sign = self.accept("symbol", "+", "-")
        negate = self.accept("symbol", "!") or self.accept("keyword", "not")
        result = self.term()
        if negate:
            result = f"pb_not({result})"
        if sign is not None and sign.value == "-":
            result = f"pb_negative({result})"
        while op := self.accept("symbol", "+", "-"):
            result = f"pb_arith({op.value!r}, {result}, {self.term()})"
        return result

    def term(self) -> str:
        result = self.power()
        while op := self.accept("symbol", "*", "/", "%"):
            result = f"pb_arith({op.value!r}, {result}, {self.power()})"
        return result

    def power(self) -> str:
        base = self.factor()
        if self.accept("symbol", "^"):
            return f"pb_arith('^', {base}, {self.power()})"
        return base

    def factor(self) -> str:
        if self.accept("symbol", "("):
            inner = self.expression()
            self.expect("symbol", ")")
            return f"({inner})"
        value = self.variable_or_literal()
        while self.accept("symbol", "|"):
            name = self.expect_name()
            if name not in FILTERS:
                raise Pongo2SyntaxError(
                    f"filter '{name}' is not supported (known: {', '.join(sorted(FILTERS))})", self.line
                )
            if self.accept("symbol", ":"):
                value = f"pb_filter_{name}({value}, {self.variable_or_literal()})"
            else:
                value = f"pb_filter_{name}({value})"
        return value

    def variable_or_literal(self) -> str:
        token = self.accept("string")
        if token is not None:
            return repr(token.value)
        token = self.accept("number")
        if token is not None:
            after = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if self.peek("symbol", ".") and after is not None and after.kind == "number":  # pongo2 reads 8.5 here
                self.i += 2
                return f"{token.value}.{after.value}"
            return token.value
        if self.accept("symbol", "["):
            return f"[{', '.join(self._items())}]"
        token = self.accept("keyword", "true", "false")
        if token is not None:
            return "True" if token.value == "true" else "False"
        token = self.accept("name")
        if token is None:
            raise self.error("expected a value")
        # Jinja2 reads these names as literals; to pongo2 they are names like any other (pb: unknown)
        result = f"pb_unknown({token.value!r})" if token.value in _JINJA_LITERALS else token.value
        while True:
            if self.accept("symbol", "."):
                part = self.accept("name") or self.accept("number") or self.accept("keyword")
                if part is None:
                    raise self.error("expected a name or number after '.'")
                result += f"[{part.value}]" if part.kind == "number" else f".{part.value}"
            elif self.accept("symbol", "("):
                result += f"({', '.join(self._arguments())})"
            else:
                return result

    def _items(self) -> list[str]:
        items: list[str] = []
        while not self.accept("symbol", "]"):
            items.append(self.expression())
            if not self.accept("symbol", ","):
                self.expect("symbol", "]")
                break
        return items

    def _arguments(self) -> list[str]:
        args: list[str] = []
        while not self.accept("symbol", ")"):
            if self.done():
                raise self.error("expected ')' to close the call")
            keyword = ""
            if self.peek("name") and self.i + 1 < len(self.tokens):
                after = self.tokens[self.i + 1]
                if after.kind == "symbol" and after.value == "=":  # pb's DeRef("...", dependency="optional")
                    keyword = self.expect_name() + "="
                    self.i += 1
            args.append(keyword + self.expression())
            if not self.accept("symbol", ","):
                self.expect("symbol", ")")
                break
        return args
