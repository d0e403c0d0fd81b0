"""What a user sees from the commands when there is no lab or the syntax is wrong."""

import json

import pytest

from lpmlab.cli import common, lpmlab, lslparmigr, lssyscfg, migrlpar
from lpmlab.errors import LabNotRunningError, UsageError


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty LPMLAB_HOME: no lab has ever been set up."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("LPMLAB_HOME", str(h))
    monkeypatch.setenv("NO_COLOR", "1")
    return h


def run(main, argv, capsys):
    rc = common.run(main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("main, argv", [
    (lssyscfg.main, ["-r", "sys"]),
    (lssyscfg.main, ["-r", "sys", "-F", "name,state", "--header"]),
    (lssyscfg.main, ["-r", "lpar", "-m", "sys1"]),
    (lslparmigr.main, ["-r", "lpar", "-m", "sys1"]),
    (lslparmigr.main, ["-r", "sys", "-m", "sys1"]),
    (migrlpar.main, ["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1"]),
    (migrlpar.main, ["-o", "v", "-m", "sys1", "-t", "sys2", "--id", "2"]),
    (lpmlab.main, ["lab", "status"]),
    (lpmlab.main, ["lab", "status", "--json"]),
    (lpmlab.main, ["lab", "console", "lpar1"]),
])
def test_no_lab_says_how_to_start_one(home, capsys, main, argv):
    rc, out, err = run(main, argv, capsys)
    assert rc == LabNotRunningError.exit_code != 0
    if "--json" in argv:  # the error as JSON on stdout too, nothing else there
        got = json.loads(out)["error"]
        assert (got["code"], got["exit_code"]) == (LabNotRunningError.code, rc)
        assert "lpmlab lab up" in got["fix"]
    else:
        assert out == ""
    assert LabNotRunningError.code in err
    assert "lpmlab lab up" in err
    assert str(home) in err  # says where it looked
    assert "Traceback" not in err
    assert list(home.iterdir()) == []  # looking created nothing


@pytest.mark.parametrize("main, argv, prog, words", [
    (lssyscfg.main, ["-r", "bogus"], "lssyscfg", ["-r", "bogus"]),
    (lssyscfg.main, [], "lssyscfg", ["-r", "required"]),
    (lssyscfg.main, ["-r", "sys", "--nosuch"], "lssyscfg", ["--nosuch"]),
    (lslparmigr.main, ["-r", "lpar", "-m"], "lslparmigr", ["-m"]),
    (migrlpar.main, ["-o", "x", "-m", "sys1", "-t", "sys2", "-p", "lpar1"], "migrlpar", ["-o"]),
    (migrlpar.main, ["-o", "m", "-t", "sys2", "-p", "lpar1"], "migrlpar", ["-m"]),
    (migrlpar.main, ["-o", "m", "-m", "sys1", "-t", "sys2"], "migrlpar", ["-p", "--id"]),
    (migrlpar.main, ["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "a", "--id", "2"],
     "migrlpar", ["--id", "-p"]),
    (lpmlab.main, [], "lpmlab", ["required"]),
    (lpmlab.main, ["lab", "bogus"], "lpmlab lab", ["bogus"]),
])
def test_bad_syntax_is_a_usage_error(home, capsys, main, argv, prog, words):
    rc, out, err = run(main, argv, capsys)
    assert rc == UsageError.exit_code == 2
    assert out == ""
    first = err.splitlines()[0]
    assert first.startswith(f"{UsageError.code} {prog}: ")
    for w in words:
        assert w in first
    assert f"Fix: see '{prog} --help'" in err
    assert list(home.iterdir()) == []


def test_migrlpar_without_target_is_a_usage_error(home, capsys):
    rc, out, err = run(migrlpar.main, ["-o", "m", "-m", "sys1", "-p", "lpar1"], capsys)
    assert rc == 2
    assert out == ""
    assert "-t is required with -o m" in err
    assert "Fix:" in err and "-t" in err.split("Fix:", 1)[1]
    # the syntax is checked before the lab: no "no lab" message
    assert LabNotRunningError.code not in err


def test_migrlpar_validate_without_target_is_a_usage_error(home, capsys):
    rc, _out, err = run(migrlpar.main, ["-o", "v", "-m", "sys1", "-p", "lpar1"], capsys)
    assert rc == 2
    assert "-t is required with -o v" in err


def test_lslparmigr_without_system_is_a_usage_error_before_the_lab(home, capsys):
    rc, out, err = run(lslparmigr.main, ["-r", "lpar"], capsys)
    assert rc == 2
    assert out == ""
    assert "-m" in err and LabNotRunningError.code not in err


def test_lssyscfg_lpar_without_system_is_a_usage_error_before_the_lab(home, capsys):
    rc, _out, err = run(lssyscfg.main, ["-r", "lpar"], capsys)
    assert rc == 2
    assert "-m" in err



def test_every_command_answers_version(capsys):
    """lpmlab itself and every HMC command: ``--version`` prints the lpmlab version, exit 0."""
    from lpmlab import __version__
    from lpmlab.cli import completion

    for name, p in completion.parsers().items():
        with pytest.raises(SystemExit) as done:
            p.parse_args(["--version"])
        assert done.value.code == 0
        assert capsys.readouterr().out == f"{name} (lpmlab {__version__})\n"


def test_installed_commands_deliver_all_their_output_and_exit_code(home, tmp_path):
    """The console scripts skip the interpreter's teardown (common.finish): what they printed
    must still all arrive, with the command's exit code, into a file, a pipe or a reader that
    went away."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    lssyscfg_bin = Path(sys.executable).parent / "lssyscfg"
    env = {**os.environ, "LPMLAB_HOME": str(home)}
    cp = subprocess.run([str(lssyscfg_bin), "-r", "sys", "--json"], capture_output=True,
                        text=True, env=env, timeout=60)
    assert cp.returncode == LabNotRunningError("x").exit_code
    assert json.loads(cp.stdout)["error"]["code"] == LabNotRunningError("x").code
    assert "lpmlab lab up" in cp.stderr
    # a big output, then an exit code, through a pipe and through a file
    code = ("from lpmlab.cli.common import finish\n"
            "import sys\n"
            "print('x' * 200000); print('end', file=sys.stderr, end=''); finish(3)\n")
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=60)
    assert (cp.returncode, len(cp.stdout), cp.stderr) == (3, 200001, "end")
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        rc = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=subprocess.DEVNULL,
                            timeout=60).returncode
    assert (rc, out.stat().st_size) == (3, 200001)
    # `| head -c 1`: the reader is gone before all is written; no traceback, exit 0
    code = ("from lpmlab.cli.common import finish, run\n"
            "finish(run(lambda argv: print('x' * 2000000), []))\n")
    cp = subprocess.run(f"{sys.executable} -c \"{code}\" | head -c 1; "
                        "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                        capture_output=True, text=True, timeout=60)
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "x", "")
