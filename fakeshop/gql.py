"""Just enough GraphQL reading for the fake: find root fields and their arguments.

The fake does not execute selection sets; it answers a fixed superset of fields per type
(see README.md). What it must read exactly is which root fields a document asks for and the
values of their arguments, since those decide what is written to the shop.
"""

import re

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


class GraphQLSyntaxError(ValueError):
    pass


def _strip_comments(doc):
    out, in_str, i = [], False, 0
    while i < len(doc):
        c = doc[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(doc[i + 1 : i + 2])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "#":
            while i < len(doc) and doc[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


class _Reader:
    def __init__(self, text, variables):
        self.s = text
        self.i = 0
        self.variables = variables or {}

    def ws(self):
        while self.i < len(self.s) and (self.s[self.i].isspace() or self.s[self.i] == ","):
            self.i += 1

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch):
        if self.peek() != ch:
            raise GraphQLSyntaxError(f"expected {ch!r} at {self.i}")
        self.i += 1

    def name(self):
        self.ws()
        m = _NAME.match(self.s, self.i)
        if not m:
            raise GraphQLSyntaxError(f"expected a name at {self.i}")
        self.i = m.end()
        return m.group()

    def value(self):
        c = self.peek()
        if c == "$":
            self.i += 1
            return self.variables.get(self.name())
        if c == '"':
            return self.string()
        if c == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.i += 1
            return items
        if c == "{":
            self.i += 1
            obj = {}
            while self.peek() != "}":
                key = self.name()
                self.expect(":")
                obj[key] = self.value()
            self.i += 1
            return obj
        m = _NUMBER.match(self.s, self.i)
        if m:
            self.i = m.end()
            text = m.group()
            return float(text) if any(x in text for x in ".eE") else int(text)
        word = self.name()
        return {"true": True, "false": False, "null": None}.get(word, word)

    def string(self):
        if self.s.startswith('"""', self.i):
            end = self.s.find('"""', self.i + 3)
            if end < 0:
                raise GraphQLSyntaxError("unterminated block string")
            text = self.s[self.i + 3 : end]
            self.i = end + 3
            return text
        self.i += 1
        out = []
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "\r", "b": "\b", "f": "\f"}
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\":
                nxt = self.s[self.i + 1]
                if nxt == "u":
                    out.append(chr(int(self.s[self.i + 2 : self.i + 6], 16)))
                    self.i += 6
                    continue
                out.append(escapes.get(nxt, nxt))
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        raise GraphQLSyntaxError("unterminated string")

    def arguments(self):
        args = {}
        if self.peek() != "(":
            return args
        self.i += 1
        while self.peek() != ")":
            key = self.name()
            self.expect(":")
            args[key] = self.value()
        self.i += 1
        return args

    def skip_block(self):
        self.expect("{")
        depth = 1
        while depth and self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.string()
                continue
            depth += {"{": 1, "}": -1}.get(c, 0)
            self.i += 1
        if depth:
            raise GraphQLSyntaxError("unbalanced braces")


def parse_operation(document, variables=None):
    """Return (kind, [(alias, field, args), ...]) for the document's single operation."""
    r = _Reader(_strip_comments(document or ""), variables)
    kind = "query"
    if r.peek() != "{":
        kind = r.name()
        if kind not in ("query", "mutation"):
            raise GraphQLSyntaxError(f"unsupported operation {kind!r}")
        if r.peek() not in ("{", "("):
            r.name()  # operation name
        if r.peek() == "(":  # variable definitions: not needed, values come from `variables`
            depth = 0
            while True:
                c = r.s[r.i]
                depth += {"(": 1, ")": -1}.get(c, 0)
                r.i += 1
                if depth == 0:
                    break
    r.expect("{")
    fields = []
    while r.peek() != "}":
        if not r.peek():
            raise GraphQLSyntaxError("unexpected end of document")
        alias = field = r.name()
        if r.peek() == ":":
            r.i += 1
            field = r.name()
        args = r.arguments()
        if r.peek() == "{":
            r.skip_block()
        fields.append((alias, field, args))
    return kind, fields
