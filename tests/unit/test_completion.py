"""``lpmlab completion``: the script offers what the parsers accept, run through real bash."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from lpmlab.cli import common, completion, lpmlab, migrlpar, registry

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("completion") / "lpmlab.bash"
    path.write_text(completion.bash())
    return path


def offered(script, line: str) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end): COMP_WORDS/COMP_CWORD set as
    bash sets them, the completion function called as bash calls it."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    code = (f"source {shlex.quote(str(script))}\n"
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n"
            "_lpmlab_complete\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", code], capture_output=True,
                         text=True, check=True)
    return [w for w in out.stdout.splitlines() if w]


def test_migrlpar_operations(script):
    assert offered(script, "migrlpar -o ") == ["m", "v", "s", "r", "set"]
    assert offered(script, "migrlpar -o s") == ["s", "set"]


def test_lab_verbs(script):
    assert offered(script, "lpmlab lab ") == ["up", "down", "status", "console"]
    assert offered(script, "lpmlab ") == ["lab", "partition", "workload", "report", "fault",
                                          "image", "demo", "completion"]
    assert offered(script, "lpmlab completion ") == ["bash", "zsh"]


def test_options_after_values_and_choices_of_later_options(script):
    got = offered(script, "migrlpar -o m -m sys1 --re")
    assert got == ["--redundantvios", "--redundantmsps"]
    assert offered(script, "migrlpar -o m -m sys1 --redundantvios ") == ["0", "1", "2"]
    assert offered(script, "migrlpar -o m --schedule ") == list(
        migrlpar.parser()._option_string_actions["--schedule"].choices)
    assert offered(script, "lssyscfg -r ") == ["sys", "lpar", "prof"]
    assert offered(script, "lpmlab lab status --") == ["--help", "--version", "--debug",
                                                       "--json"]


def test_a_free_value_offers_nothing(script):
    assert offered(script, "migrlpar -o m -m ") == []
    assert offered(script, "chsysstate -m sys1 -n ") == []  # a partition name: no guess


def test_every_option_of_every_parser_is_offered(script):
    """Drift: whatever a parser accepts, the script offers (it is generated from them)."""
    for name, p in completion.parsers().items():
        got = set(offered(script, f"{name} -"))
        want = {o for a in p._actions for o in a.option_strings}
        assert got == want, name


def test_the_script_registers_every_command():
    last = completion.bash().rstrip().splitlines()[-1]
    assert last.startswith("complete -o default -F _lpmlab_complete ")
    assert set(last.split()[5:]) == {"lpmlab", *registry.HMC_COMMANDS}


def test_zsh_gets_the_same_functions_through_bashcompinit():
    z = completion.zsh()
    assert z.startswith("#compdef lpmlab ")
    assert "bashcompinit" in z and z.endswith(completion.bash())


def test_the_command_prints_it(capsys):
    assert common.run(lpmlab.main, ["completion", "bash"]) == 0
    assert capsys.readouterr().out == completion.bash()
    assert common.run(lpmlab.main, ["completion", "fish"]) == 2
    assert "invalid choice" in capsys.readouterr().err
