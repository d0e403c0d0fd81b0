"""The HMC restricted shell: its language, its filters, and commands run through the real
command server (no lab here, so every command ends in its 'no lab' error, which is exactly
what the same command prints when run locally)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lpmlab.cli import shellfilters
from lpmlab.cli.shellsyntax import ShellRefusal, assignment, parse


def words(line: str) -> list[list[list[str]]]:
    """Each list's pipelines' commands as expanded words ($? = 7)."""
    out = []
    for item in parse(line):
        for pipeline in [item.first] + [p for _op, p in item.rest]:
            out.append([[w.expand(7) for w in cmd] for cmd in pipeline.commands])
    return out


def test_a_client_pipeline_splits_as_sh_would():
    line = "lssyscfg -r lpar -m S -F name,lpar_env|grep vio|tail -1|cut -d, -f 1"
    assert words(line) == [[["lssyscfg", "-r", "lpar", "-m", "S", "-F", "name,lpar_env"],
                            ["grep", "vio"], ["tail", "-1"], ["cut", "-d,", "-f", "1"]]]


@pytest.mark.parametrize("line,expected", [
    ("migrlpar -o m -m s1 -t s2 -p 'lp 1'", ["migrlpar", "-o", "m", "-m", "s1", "-t", "s2",
                                             "-p", "lp 1"]),
    ('chsyscfg -r lpar -m S -i "name=L, secure_boot=2"',
     ["chsyscfg", "-r", "lpar", "-m", "S", "-i", "name=L, secure_boot=2"]),
    ('migrlpar -i "vnic_mappings=\\"3/ded/v/1\\""',
     ["migrlpar", "-i", 'vnic_mappings="3/ded/v/1"']),
    ("lssyscfg -m 9009-42A*LPM0001 -r lpar", ["lssyscfg", "-m", "9009-42A*LPM0001", "-r", "lpar"]),
    ("lssyscfg  -r   sys  ", ["lssyscfg", "-r", "sys"]),
    ("echo Rc=$?", ["echo", "Rc=7"]),
    ('echo "$?"x', ["echo", "7x"]),
    ("grep 'a$' ", ["grep", "a$"]),
    ("lssyscfg -r sys # a comment", ["lssyscfg", "-r", "sys"]),
    ("a\\ b c", ["a b", "c"]),
])
def test_words_quotes_and_the_last_status(line, expected):
    assert words(line) == [[expected]]


def test_lists_and_newlines():
    assert [p[0][0] for p in words("a; b && c || d\ne")] == ["a", "b", "c", "d", "e"]
    assert words("") == [] and words("   ") == [] and words("# only a comment") == []


def test_ps1_assignment_loses_its_backslashes_and_quoted_names_are_no_assignments():
    (cmd,) = parse("PS1=\\[ssh-expect\\]#")[0].first.commands
    name, value = assignment(cmd[0])
    assert (name, value.expand(0)) == ("PS1", "[ssh-expect]#")
    (cmd,) = parse('"PS1"=x')[0].first.commands
    assert assignment(cmd[0]) is None


@pytest.mark.parametrize("line,message,status", [
    ("lssyscfg -r sys > /tmp/x", "cannot redirect output", 1),
    ("lssyscfg -r sys >> /tmp/x", "cannot redirect output", 1),
    ("lssyscfg -r sys &> /tmp/x", "cannot redirect output", 1),
    ("lssyscfg -r sys |& grep x", "cannot redirect output", 1),
    ("grep x < /etc/passwd", "cannot redirect input", 1),
    ("lssyscfg -r $(id)", "command substitution", 1),
    ("lssyscfg -r `id`", "command substitution", 1),
    ('lssyscfg -r "`id`"', "command substitution", 1),
    ('lssyscfg -m "$(id)"', "command substitution", 1),
    ("lssyscfg -m $HOME", "parameter expansion", 1),
    ("lssyscfg -m ${PATH}", "parameter expansion", 1),
    ('lssyscfg -m "$SHELL"', "parameter expansion", 1),
    ("lssyscfg -r sys &", "background jobs", 1),
    ("(lssyscfg -r sys)", "subshells", 1),
    ("lssyscfg |", "unexpected end of file", 2),
    ("| grep x", "unexpected token `|'", 2),
    ("a ;; b", "unexpected token `;;'", 2),
    ("; a", "unexpected token `;'", 2),
    ("lssyscfg 'x", "matching `''", 2),
    ('lssyscfg "x', 'matching `"\'', 2),
])
def test_what_the_language_refuses(line, message, status):
    with pytest.raises(ShellRefusal) as err:
        parse(line)
    assert message in err.value.render() and err.value.render().startswith("rbash: ")
    assert err.value.exit_code == status


# -- filters ----------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["grep", "vio"], ["grep", "-v", "-i", "x"], ["grep", "-iv", "x"], ["grep", "-e", "a", "-e",
                                                                         "b"],
    ["grep", "-m1", "x"], ["grep", "--max-count=2", "x"], ["grep", "-c", "--", "-x"],
    ["tail", "-1"], ["tail", "-n", "+2"], ["head", "-n", "3"], ["head", "-5"],
    ["cut", "-d,", "-f", "1"], ["cut", "-d", ":", "-f1,2"], ["sort", "-t,", "-k2", "-n"],
    ["sort", "-u"], ["wc", "-l"], ["sed", "s/a/b/"], ["sed", "-n", "-e", "1p"],
    ["uniq", "-c"], ["tr", "-d", ","], ["tr", "a-z", "A-Z"],
])
def test_filters_run_with_their_options(argv):
    out = shellfilters.checked_argv(argv)
    assert Path(out[0]).name == argv[0] and Path(out[0]).is_absolute()


def test_sed_always_runs_sandboxed():
    assert shellfilters.checked_argv(["sed", "s/a/b/"])[1] == "--sandbox"


@pytest.mark.parametrize("argv,what", [
    (["grep", "x", "/etc/passwd"], "cannot read files ('/etc/passwd')"),
    (["grep", "-e", "x", "/etc/shadow"], "cannot read files"),
    (["grep", "-f", "/etc/passwd"], "option -f"),
    (["grep", "-r", "x"], "option -r"),
    (["grep", "--file=/etc/passwd"], "option --file"),
    (["sed", "-i", "s/a/b/"], "option -i"),
    (["sed", "-f", "script"], "option -f"),
    (["sed", "s/a/b/", "/etc/passwd"], "cannot read files"),
    (["sort", "-o", "/tmp/out"], "option -o"),
    (["sort", "--compress-program=sh"], "option --compress-program"),
    (["sort", "-T", "/tmp"], "option -T"),
    (["sort", "/etc/passwd"], "cannot read files"),
    (["wc", "--files0-from=/etc/x"], "option --files0-from"),
    (["tail", "-f"], "option -f"),
    (["tail", "/etc/passwd"], "cannot read files"),
    (["uniq", "in", "out"], "cannot read files"),
    (["cut", "-f"], "needs a value"),
])
def test_filters_never_touch_files_or_run_programs(argv, what):
    with pytest.raises(ShellRefusal) as err:
        shellfilters.checked_argv(argv)
    assert what in err.value.render() and err.value.render().startswith(f"rbash: {argv[0]}: ")


# -- the shell with the real command server ----------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A command server for HMC 'hmc1' of a lab that is not up (LPMLAB_HOME is empty)."""
    home = tmp_path_factory.mktemp("lpmhome")
    sock = home / "hmc.sock"
    env = dict(os.environ, LPMLAB_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "lpmlab.cli.cmdserver", "--lab-dir",
                             str(home / "lab"), "--hmc", "hmc1", "--socket", str(sock),
                             "--allow-uid", str(os.getuid())], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the command server did not start"
        time.sleep(0.05)
    yield sock, env
    proc.terminate()
    proc.wait(10)


def shell(server, line: str | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    sock, env = server
    argv = ["hmcsh", "-c", line] if line is not None else ["-hmcsh"]
    code = ("import sys; from lpmlab.cli.hmcshell import main; "
            f"sys.exit(main('hmc1', {str(sock)!r}, {argv!r}))")
    return subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True,
                          text=True, env=env, timeout=60)


def local(server, *argv: str) -> subprocess.CompletedProcess:
    _sock, env = server
    return subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_command_through_the_server_prints_and_exits_as_the_local_one(server):
    remote, here = shell(server, "lssyscfg -r sys"), local(server, "lssyscfg", "-r", "sys")
    assert (remote.returncode, remote.stdout, remote.stderr) == \
           (here.returncode, here.stdout, here.stderr)
    assert remote.returncode == 5 and "LPM1002" in remote.stderr


def test_usage_errors_and_help_come_back_too(server):
    bad = shell(server, "migrlpar -o m")
    assert bad.returncode == 2 and bad.stderr.startswith("HSCL8001")
    helped = shell(server, "migrlpar --help")
    assert helped.returncode == 0 and "usage: migrlpar" in helped.stdout


def test_pipes_feed_the_filters_and_the_last_status_counts(server):
    out = shell(server, "lssyscfg --help | grep -c usage")
    assert (out.returncode, out.stdout) == (0, "1\n")
    out = shell(server, "lssyscfg --help | grep -c no-such-text")
    assert (out.returncode, out.stdout) == (1, "0\n")
    out = shell(server, "lssyscfg -r sys | wc -l")  # the error goes to stderr, not the pipe
    assert out.returncode == 0 and out.stdout.strip() == "0" and "LPM1002" in out.stderr


def test_and_or_and_the_status_builtins(server):
    out = shell(server, "lssyscfg -r sys; echo Rc=$?")
    assert out.stdout == "Rc=5\n"
    out = shell(server, "lssyscfg -r sys && echo yes || echo no")
    assert out.stdout == "no\n"
    out = shell(server, "lssyscfg --help >/dev/null; echo not reached")
    assert out.returncode == 1 and out.stdout == "" and "cannot redirect output" in out.stderr
    assert shell(server, "exit 3").returncode == 3
    assert shell(server, "").returncode == 0  # avocado's ssh -T -n host ''


@pytest.mark.parametrize("line,message,status", [
    ("ls /", "rbash: ls: command not found", 127),
    ("/bin/sh -c id", "cannot specify `/' in command names", 1),
    ("grep root", "only HMC commands run here", 1),
    ("lssyscfg -r sys; sh", "rbash: sh: command not found", 127),
    ("lssyscfg -r sys | sh", "rbash: sh: command not found", 127),
    ("lssyscfg -r sys | python3", "rbash: python3: command not found", 127),
    ("lssyscfg -r sys | sed -i s/a/b/ x", "option -i", 1),
    ("lssyscfg -r sys | sort -o /tmp/x", "option -o", 1),
    ("lssyscfg -r sys | grep x /etc/shadow", "cannot read files", 1),
    ("cd /tmp", "rbash: cd: restricted", 1),
    ("exec sh", "rbash: exec: restricted", 1),
    ("PATH=/tmp", "rbash: PATH: readonly variable", 1),
    ("LD_PRELOAD=/tmp/x.so lssyscfg -r sys", "no variable reaches a command", 1),
    ("export LD_PRELOAD=/tmp/x.so", "rbash: LD_PRELOAD: readonly variable", 1),
    ("export PATH", "rbash: PATH: readonly variable", 1),
    ("eval id", "rbash: eval: restricted", 1),
    ("source /etc/profile", "rbash: source: restricted", 1),
    ("which bash && exec bash --norc --noprofile", "rbash: which: command not found", 127),
    ("scp -t /tmp", "rbash: scp: command not found", 127),
    ("exit abc", "numeric argument required", 2),
])
def test_refusals_run_nothing_and_say_why(server, line, message, status):
    out = shell(server, line)
    assert (out.returncode, out.stdout) == (status, "")
    assert message in out.stderr


def test_options_other_than_c_are_refused(server):
    sock, env = server
    code = ("import sys; from lpmlab.cli.hmcshell import main; "
            f"sys.exit(main('hmc1', {str(sock)!r}, ['hmcsh', '-i']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "takes no options but -c" in out.stderr


def test_commands_on_a_non_terminal_stdin_run_line_by_line(server):
    out = shell(server, None, "echo one\nlssyscfg -r sys\necho Rc=$?\nexit 4\necho never\n")
    assert out.stdout == "one\nRc=5\n" and out.returncode == 4


def test_variables_set_the_prompt_only(server):
    from lpmlab.cli.hmcshell import Settings, Shell

    sh = Shell(Settings("hmc1", "/nonexistent", user="hscroot"))
    assert sh.prompt() == "hscroot@hmc1:~> "
    assert sh.run_line("PS1=\\[ssh-expect\\]#") == 0 and sh.prompt() == "[ssh-expect]#"
    sh.run_line("PS1='\\u@\\h:\\w> '")
    assert sh.prompt() == "hscroot@hmc1:~> "
    assert sh.run_line("export LANG=C") == 0 and sh.variables["LANG"] == "C"


def test_a_server_that_is_down_is_named(server, tmp_path):
    _sock, env = server
    code = ("import sys; from lpmlab.cli.hmcshell import main; "
            f"sys.exit(main('hmc1', {str(tmp_path / 'none.sock')!r}, "
            "['hmcsh', '-c', 'lssyscfg -r sys']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "command server of HMC hmc1 does not answer" in out.stderr


def test_the_server_refuses_what_is_no_hmc_command(server):
    import socket

    from lpmlab.cli import cmdwire

    sock, _env = server
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(str(sock))
    cmdwire.send(conn, {"argv": ["sh", "-c", "id"]}, [0, 1, 2])
    reply, _ = cmdwire.receive(conn)
    assert reply["rc"] == 126 and "not an HMC command" in reply["error"]


def test_the_shell_runs_from_the_copy_the_lab_makes(tmp_path):
    """The login shell runs as the HMC user with the system's python3 -I -S, from the copy
    of its modules that playbooks/lab.yml puts in the HMC's /etc/ssh: that copy is all it
    imports, and it needs nothing but the standard library."""
    import shutil

    import yaml

    repo = Path(__file__).resolve().parents[2]
    plays = yaml.safe_load((repo / "playbooks" / "lab.yml").read_text())
    task = next(t for play in plays for t in play["tasks"] if "lpm_hmc_endpoint" in t)
    for rel in task["lpm_hmc_endpoint"]["shell_files"]:
        (tmp_path / "lpmlab" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo / "lpmlab" / rel, tmp_path / "lpmlab" / rel)
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import lpmlab.cli.hmcshell; "
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('lpmlab'))))")
    out = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    codes = {"lpmlab.codes", "lpmlab.codes.entry", "lpmlab.codes.lab", "lpmlab.codes.commands",
             "lpmlab.codes.migration", "lpmlab.codes.validation",
             "lpmlab.codes.rest"}  # its errors' registry
    assert set(out.stdout.split()) == {"lpmlab", "lpmlab.errors", "lpmlab.cli",
                                       "lpmlab.cli.hmcshell", "lpmlab.cli.shellsyntax",
                                       "lpmlab.cli.shellfilters", "lpmlab.cli.cmdwire",
                                       "lpmlab.cli.registry", *codes}
