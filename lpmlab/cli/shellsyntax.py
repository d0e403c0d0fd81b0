"""The HMC restricted shell's command language: a small, safe subset of the POSIX shell.

What clients send an HMC over SSH is shell text (``lssyscfg -r lpar -m S -F name|grep vio``),
so the shell parses it as ``sh`` would — words, single and double quotes, backslashes,
pipelines, ``;``, ``&&`` and ``||``, ``$?`` (``cmd; echo Rc=$?`` is how interactive clients
read a status) — and refuses everything that would reach beyond the HMC commands:
redirections, command substitution, other parameter expansions, background jobs and
subshells. Globbing, brace and tilde expansion never happen (the words stay as written), so
``-t 9009-42A*LPM0001`` arrives unchanged. A refusal anywhere refuses the whole line before
any of it runs.

Standard library only: the login shell runs as the HMC user, outside the lab's venv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lpmlab.errors import LpmlabError

SHELL = "rbash"  # the HMC's restricted bash: its messages start so
_EXPANSION_START = re.compile(r"[A-Za-z_{(0-9@*#?!$-]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class ShellRefusal(LpmlabError):
    """The shell refuses a line: ``message`` is printed as is, ``exit_code`` is the status."""

    code = "RBASH"

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def render(self) -> str:
        return self.message


def restricted(what: str) -> ShellRefusal:
    return ShellRefusal(f"{SHELL}: restricted: {what}")


def syntax_error(token: str) -> ShellRefusal:
    token = "newline" if token == "\n" else token
    return ShellRefusal(f"{SHELL}: syntax error near unexpected token `{token}'", 2)


@dataclass(frozen=True)
class Operator:
    text: str  # | ; && || or a newline


LAST_STATUS = None  # the ``$?`` part of a word


@dataclass(frozen=True)
class Word:
    """A word as written: literal text parts and ``$?`` (LAST_STATUS) parts."""

    parts: tuple[str | None, ...]
    quoted: bool = False  # some part of it was quoted or escaped
    plain: int = 0  # how many leading characters were neither quoted nor escaped

    @property
    def text(self) -> str:
        """The word with ``$?`` left as written (for names and messages)."""
        return "".join("$?" if p is LAST_STATUS else p for p in self.parts)

    def expand(self, status: int) -> str:
        return "".join(str(status) if p is LAST_STATUS else p for p in self.parts)


Token = Operator | Word


def tokens(line: str) -> list[Token]:
    """Split ``line`` into words and operators, refusing what the shell does not allow."""
    return _Lexer(line).run()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out: list[Token] = []
        self.word: list[str | None] | None = None
        self.quoted = False
        self.plain = 0

    def run(self) -> list[Token]:
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if c in " \t":
                self.end_word()
                self.i += 1
            elif c == "\n":
                self.end_word()
                self.out.append(Operator("\n"))
                self.i += 1
            elif c == "#" and self.word is None:
                while self.i < len(t) and t[self.i] != "\n":
                    self.i += 1
            elif c == "'":
                self.single_quoted()
            elif c == '"':
                self.double_quoted()
            elif c == "\\":
                self.escaped()
            elif c in "|&;":
                self.operator(c)
            elif c in "<>":
                raise restricted("cannot redirect output" if c == ">" or
                                 t[self.i:self.i + 2] == "<>" else "cannot redirect input")
            elif c in "()":
                raise restricted("subshells and command groups are not allowed")
            elif c == "`":
                raise restricted("command substitution is not allowed")
            elif c == "$" and t[self.i + 1:self.i + 2] == "?":
                self.add(LAST_STATUS)
                self.i += 2
            elif c == "$" and _EXPANSION_START.match(t, self.i + 1):
                raise _expansion(t[self.i + 1:self.i + 2])
            else:
                self.add(c)
                self.i += 1
        self.end_word()
        return self.out

    def add(self, text: str | None, quoted: bool = False) -> None:
        if self.word is None:
            self.word, self.quoted, self.plain = [], False, 0
        if not (quoted or self.quoted) and text is not LAST_STATUS:
            self.plain += len(text)  # type: ignore[arg-type]
        self.word.append(text)
        self.quoted = self.quoted or quoted or text is LAST_STATUS

    def end_word(self) -> None:
        if self.word is not None:
            parts: list[str | None] = []
            for p in self.word:  # join the literal runs
                if p is not LAST_STATUS and parts and parts[-1] is not LAST_STATUS:
                    parts[-1] += p  # type: ignore[operator]
                else:
                    parts.append(p)
            self.out.append(Word(tuple(parts), self.quoted, self.plain))
            self.word = None

    def single_quoted(self) -> None:
        end = self.text.find("'", self.i + 1)
        if end < 0:
            raise ShellRefusal(f"{SHELL}: unexpected EOF while looking for matching `''", 2)
        self.add(self.text[self.i + 1:end], quoted=True)
        self.i = end + 1

    def double_quoted(self) -> None:
        t, j = self.text, self.i + 1
        self.add("", quoted=True)  # "" is a word too
        while True:
            if j >= len(t):
                raise ShellRefusal(f'{SHELL}: unexpected EOF while looking for matching `"\'',
                                   2)
            c = t[j]
            if c == '"':
                break
            if c == "\\" and j + 1 < len(t) and t[j + 1] in '$`"\\\n':
                if t[j + 1] != "\n":
                    self.add(t[j + 1], quoted=True)
                j += 2
                continue
            if c == "`":
                raise restricted("command substitution is not allowed")
            if c == "$" and t[j + 1:j + 2] == "?":
                self.add(LAST_STATUS, quoted=True)
                j += 2
                continue
            if c == "$" and _EXPANSION_START.match(t, j + 1):
                raise _expansion(t[j + 1:j + 2])
            self.add(c, quoted=True)
            j += 1
        self.i = j + 1

    def escaped(self) -> None:
        nxt = self.text[self.i + 1:self.i + 2]
        if nxt == "\n":  # a line continuation
            self.i += 2
            return
        self.add(nxt, quoted=True)
        self.i += 2

    def operator(self, c: str) -> None:
        self.end_word()
        two = self.text[self.i:self.i + 2]
        if two in ("&&", "||"):
            self.out.append(Operator(two))
            self.i += 2
        elif two == "|&":
            raise restricted("cannot redirect output")
        elif two == ";;":
            raise syntax_error(";;")
        elif c == "&":
            if two == "&>":
                raise restricted("cannot redirect output")
            raise restricted("background jobs are not allowed")
        else:
            self.out.append(Operator(c))
            self.i += 1


def _expansion(after: str) -> ShellRefusal:
    if after == "(":
        return restricted("command substitution is not allowed")
    return restricted("parameter expansion is not allowed (only $? is)")


@dataclass
class Pipeline:
    commands: list[list[Word]]


@dataclass
class AndOrList:
    """Pipelines joined by ``&&``/``||``: ``rest`` holds (operator, pipeline) pairs."""

    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


def parse(line: str) -> list[AndOrList]:
    """The lists of a line, in order (``;`` and newlines separate them); empty for a blank
    line or a comment."""
    toks = tokens(line)
    lists: list[AndOrList] = []
    pos = 0
    while pos < len(toks):
        tok = toks[pos]
        if isinstance(tok, Operator) and tok.text in (";", "\n"):
            if tok.text == ";":
                raise syntax_error(";")
            pos += 1
            continue
        item, pos = _and_or(toks, pos)
        lists.append(item)
        if pos < len(toks):  # a separator ends the list
            pos += 1
    return lists


def assignment(word: Word) -> tuple[str, Word] | None:
    """(name, value) when ``word`` is ``NAME=value`` (the name unquoted), else None."""
    first = word.parts[0] if word.parts else LAST_STATUS
    if first is LAST_STATUS or not _ASSIGNMENT.match(first[:word.plain]):
        return None
    name, _, rest = first.partition("=")
    return name, Word((rest, *word.parts[1:]), word.quoted)


def _pipeline(toks: list[Token], pos: int) -> tuple[Pipeline, int]:
    commands: list[list[Word]] = []
    while True:
        words: list[Word] = []
        while pos < len(toks) and isinstance(toks[pos], Word):
            words.append(toks[pos])  # type: ignore[arg-type]
            pos += 1
        if not words:
            bad = toks[pos].text if pos < len(toks) else "newline"  # type: ignore[union-attr]
            raise syntax_error(bad)
        commands.append(words)
        if pos < len(toks) and toks[pos] == Operator("|"):
            pos += 1
            if pos >= len(toks):
                raise ShellRefusal(f"{SHELL}: syntax error: unexpected end of file", 2)
            continue
        return Pipeline(commands), pos


def _and_or(toks: list[Token], pos: int) -> tuple[AndOrList, int]:
    first, pos = _pipeline(toks, pos)
    out = AndOrList(first)
    while pos < len(toks) and isinstance(toks[pos], Operator) and \
            toks[pos].text in ("&&", "||"):  # type: ignore[union-attr]
        op = toks[pos].text  # type: ignore[union-attr]
        pos += 1
        while pos < len(toks) and toks[pos] == Operator("\n"):
            pos += 1  # sh lets a line break follow && and ||
        if pos >= len(toks):
            raise ShellRefusal(f"{SHELL}: syntax error: unexpected end of file", 2)
        nxt, pos = _pipeline(toks, pos)
        out.rest.append((op, nxt))
    return out, pos
