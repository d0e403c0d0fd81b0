"""The HMC's restricted login shell, as ``hscroot`` gets it over SSH.

sshd starts it as the user's login shell: ``hmcsh -c 'CMD'`` for ``ssh hscroot@hmc 'CMD'``
(no terminal, no profile), ``-hmcsh`` for an interactive login (a prompt as the HMC's,
``exit`` to leave), or with the commands on a non-terminal stdin. A line may hold HMC
commands, piped into the text filters of ``lpmlab.cli.shellfilters`` and joined by ``;``,
``&&`` and ``||`` (``lpmlab.cli.shellsyntax``), plus the few builtins interactive clients
lean on (``echo $?``, ``PS1=...``, ``export LANG=C``, ``exit``); anything else is refused
with rbash's words and a non-zero status, before any of the line runs. Shell variables
never reach the HMC commands (only the terminal's type and size do): ``PS1`` sets the
prompt, the others are kept and do nothing. Each HMC command runs in the HMC's
command server (``lpmlab.cli.cmdserver``) on this session's own stdin/stdout/stderr; the
exit status of the last command of a pipeline is the shell's, as in sh.

Standard library only: it runs as the HMC user with the system's python3 (``-I -S``), from a
copy of these modules in the HMC's /etc/ssh, outside the lab's venv.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from lpmlab import codes
from lpmlab.cli import cmdwire, registry, shellfilters
from lpmlab.cli.shellsyntax import (
    SHELL,
    AndOrList,
    Pipeline,
    ShellRefusal,
    Word,
    assignment,
    parse,
)

# rbash's own builtins a user may try; they are refused as rbash refuses them
RESTRICTED_BUILTINS = ("cd", "exec", "unset", "set", "source", ".", "enable", "command",
                       "builtin", "eval", "alias", "hash", "ulimit", "umask", "shopt", "trap",
                       "history", "fc", "kill", "read", "readonly", "declare", "typeset",
                       "local", "let", "printf", "wait", "jobs", "fg", "bg", "disown")
LEAVE = ("exit", "logout")
BUILTINS = ("echo", "export")
# variables rbash will not let be set, and ones that change how programs load
READONLY = ("PATH", "SHELL", "ENV", "BASH_ENV", "HOME", "IFS", "SHELLOPTS", "BASHOPTS",
            "PROMPT_COMMAND", "HISTFILE")
READONLY_PREFIXES = ("LD_", "PYTHON", "BASH_FUNC")


@dataclass
class Settings:
    hmc: str
    socket: str
    user: str = field(default_factory=lambda: pwd.getpwuid(os.getuid()).pw_name)


class Leave(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class _Stage:
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None  # a filter
    conn: socket.socket | None = None             # an HMC command in the server
    status: int | None = None


class Shell:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = 0
        self.variables: dict[str, str] = {}
        self._running: list[_Stage] = []

    # -- whole lines ---------------------------------------------------------------------
    def run_line(self, line: str) -> int:
        """Run one line (a -c string holds several when it has newlines); the status of
        the last pipeline that ran."""
        try:
            lists = parse(line)
            for item in lists:
                self._check(item)
        except ShellRefusal as exc:
            _say(exc.render())
            self.status = exc.exit_code
            return self.status
        for item in lists:
            self.status = self._and_or(item)
        return self.status

    def _check(self, item: AndOrList) -> None:
        for pipeline in [item.first] + [p for _op, p in item.rest]:
            for i, words in enumerate(pipeline.commands):
                argv = [w.text for w in words]
                name = argv[0]
                assigned = [assignment(w) for w in words]
                if all(assigned):
                    if len(pipeline.commands) > 1:
                        raise ShellRefusal(f"{SHELL}: restricted: assignments cannot be piped")
                    for pair in assigned:
                        _check_variable(pair[0])  # type: ignore[index]
                    continue
                if assigned[0]:
                    raise ShellRefusal(f"{SHELL}: {assigned[0][0]}: restricted: no variable "
                                       "reaches a command (set it on a line of its own)")
                if "/" in name:
                    raise ShellRefusal(f"{SHELL}: {name}: restricted: cannot specify `/' in "
                                       "command names")
                if name in LEAVE:
                    if len(pipeline.commands) > 1:
                        raise ShellRefusal(f"{SHELL}: {name}: restricted: not in a pipeline")
                    if len(argv) > 2:
                        raise ShellRefusal(f"{SHELL}: {name}: too many arguments")
                    if len(argv) == 2 and not words[1].expand(0).isdigit():
                        raise ShellRefusal(f"{SHELL}: {name}: {argv[1]}: numeric argument "
                                           "required", 2)
                elif name in RESTRICTED_BUILTINS:
                    raise ShellRefusal(f"{SHELL}: {name}: restricted")
                elif name in BUILTINS:
                    if len(pipeline.commands) > 1:
                        raise ShellRefusal(f"{SHELL}: {name}: restricted: not in a pipeline")
                    if name == "export":
                        for w in words[1:]:
                            pair = assignment(w)
                            _check_variable(pair[0] if pair else w.text)
                elif registry.is_hmc_command(name):
                    continue
                elif shellfilters.is_filter(name):
                    if i == 0:
                        raise ShellRefusal(f"{SHELL}: {name}: restricted: only HMC commands "
                                           "run here; a filter reads an HMC command's output "
                                           f"(... | {name})")
                    shellfilters.checked_argv(argv)
                else:
                    raise ShellRefusal(f"{SHELL}: {name}: command not found", 127)

    def _and_or(self, item: AndOrList) -> int:
        status = self._pipeline(item.first)
        for op, pipeline in item.rest:
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipeline)
        return status

    # -- one pipeline --------------------------------------------------------------------
    def _pipeline(self, pipeline: Pipeline) -> int:
        first = pipeline.commands[0]
        if len(pipeline.commands) == 1:
            done = self._builtin(first)
            if done is not None:
                return done
        stages = [_Stage([w.expand(self.status) for w in words])
                  for words in pipeline.commands]
        # pipes[i] joins stage i to stage i+1
        pipes = [os.pipe() for _ in stages[1:]]
        self._running = stages
        try:
            for i, stage in enumerate(stages):
                stdin = pipes[i - 1][0] if i else 0
                stdout = pipes[i][1] if i < len(pipes) else 1
                if registry.is_hmc_command(stage.argv[0]):
                    self._start_hmc(stage, stdin, stdout)
                else:
                    stage.proc = subprocess.Popen(
                        shellfilters.checked_argv(stage.argv), stdin=stdin, stdout=stdout,
                        env=_filter_env(), cwd="/", close_fds=True)
                # our copies of the pipe ends this stage now holds
                if i:
                    os.close(pipes[i - 1][0])
                if i < len(pipes):
                    os.close(pipes[i][1])
            for stage in stages:
                stage.status = self._wait(stage)
        finally:
            self._running = []
            for stage in stages:
                if stage.conn is not None:
                    stage.conn.close()
        return stages[-1].status if stages[-1].status is not None else 1

    def _builtin(self, words: list[Word]) -> int | None:
        """Run a builtin (its status), or None when ``words`` is no builtin."""
        argv = [w.expand(self.status) for w in words]
        if argv[0] in LEAVE:
            raise Leave(int(argv[1]) if len(argv) > 1 else self.status)
        pairs = [assignment(w) for w in words]
        if all(pairs):
            for name, value in pairs:  # type: ignore[misc]
                self.variables[name] = value.expand(self.status)
            return 0
        if argv[0] == "export":
            for w in words[1:]:
                pair = assignment(w)
                if pair:
                    self.variables[pair[0]] = pair[1].expand(self.status)
            return 0
        if argv[0] == "echo":
            args, newline = argv[1:], True
            while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
                newline = newline and "n" not in args[0]
                args = args[1:]
            sys.stdout.write(" ".join(args) + ("\n" if newline else ""))
            sys.stdout.flush()
            return 0
        return None

    def _start_hmc(self, stage: _Stage, stdin: int, stdout: int) -> None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(self.settings.socket)
            env = {k: os.environ[k] for k in cmdwire.PASSED_ENV if k in os.environ}
            if os.isatty(2) and "COLUMNS" not in env:
                with contextlib.suppress(OSError):
                    env["COLUMNS"] = str(os.get_terminal_size(2).columns)
            cmdwire.send(conn, {"argv": stage.argv, "env": env, "user": self.settings.user},
                         [stdin, stdout, 2])
        except OSError as exc:
            conn.close()
            stage.status = 1
            err = codes.error("LPM1009", obj=self.settings.hmc, detail=exc.strerror or exc)
            _say(err.render())
            return
        stage.conn = conn

    def _wait(self, stage: _Stage) -> int:
        if stage.proc is not None:
            return stage.proc.wait()
        if stage.conn is None:
            return stage.status if stage.status is not None else 1
        try:
            rc, error = cmdwire.wait_status(stage.conn)
        except OSError:
            return 1
        if error:
            _say(f"{SHELL}: {stage.argv[0]}: {error}")
        return 1 if rc is None else rc

    def forward(self, sig: int) -> None:
        """Pass a signal (Ctrl-C, a resize, a hangup) on to the HMC commands under way."""
        for stage in self._running:
            if stage.conn is not None:
                with contextlib.suppress(OSError):
                    cmdwire.send(stage.conn, {"signal": int(sig)})
            elif stage.proc is not None and sig != signal.SIGWINCH:
                with contextlib.suppress(OSError):
                    stage.proc.send_signal(sig)

    # -- sessions ------------------------------------------------------------------------
    def prompt(self) -> str:
        ps1 = self.variables.get("PS1")
        if ps1 is None:
            return f"{self.settings.user}@{self.settings.hmc}:~> "
        # bash's prompt escapes that matter here; \[ \] only mark non-printing runs
        out, i = [], 0
        while i < len(ps1):
            c = ps1[i]
            if c == "\\" and i + 1 < len(ps1):
                e = ps1[i + 1]
                out.append({"u": self.settings.user, "h": self.settings.hmc,
                            "H": self.settings.hmc, "w": "~", "W": "~", "$": "$",
                            "[": "", "]": "", "\\": "\\"}.get(e, c + e))
                i += 2
                continue
            out.append(c)
            i += 1
        return "".join(out)

    def interactive(self) -> int:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history at the prompt)
        while True:
            try:
                line = input(self.prompt())
            except EOFError:
                print("logout")
                return self.status
            except KeyboardInterrupt:
                print()
                self.status = 130
                continue
            try:
                self.run_line(line)
            except Leave as leave:
                print("logout")
                return leave.status

    def script(self, stream: object) -> int:
        for line in stream:  # type: ignore[attr-defined]
            self.run_line(line.rstrip("\n"))
        return self.status


def _check_variable(name: str) -> None:
    if name in READONLY or name.startswith(READONLY_PREFIXES):
        raise ShellRefusal(f"{SHELL}: {name}: readonly variable")


def _filter_env() -> dict[str, str]:
    return {"PATH": shellfilters.FILTER_PATH, "LC_ALL": "C.UTF-8"}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(hmc: str, socket_path: str, argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    shell = Shell(Settings(hmc, socket_path))
    signal.signal(signal.SIGINT, lambda s, f: _interrupt(shell, s))
    for sig in (signal.SIGWINCH, signal.SIGQUIT):
        signal.signal(sig, lambda s, f: shell.forward(s))
    signal.signal(signal.SIGHUP, lambda s, f: _hangup(shell))
    signal.signal(signal.SIGTERM, lambda s, f: _hangup(shell))
    try:
        if len(argv) >= 3 and argv[1] == "-c":
            return shell.run_line(argv[2])
        if len(argv) == 2 and argv[1] == "-c":
            _say(f"{SHELL}: -c: option requires an argument")
            return 2
        if len(argv) > 1:
            _say(f"{SHELL}: {argv[1]}: restricted: the HMC shell takes no options but -c")
            return 2
        if sys.stdin.isatty():
            return shell.interactive()
        return shell.script(sys.stdin)
    except Leave as leave:
        return leave.status
    except KeyboardInterrupt:
        return 130


def _interrupt(shell: Shell, sig: int) -> None:
    if shell._running:
        shell.forward(sig)
        return
    raise KeyboardInterrupt


def _hangup(shell: Shell) -> None:
    # closing the connections hangs the commands up (the server sends SIGHUP)
    for stage in shell._running:
        if stage.conn is not None:
            with contextlib.suppress(OSError):
                stage.conn.close()
    os._exit(129)
