"""Bad input the fuzzing of issue 11 found accepted, or answered with a traceback: each is now
refused with a code before the lab is touched (tests/integration/test_fuzz_commands.py runs
the generated commands against the real lab)."""

from __future__ import annotations

import pytest

from lpmlab.cli import (
    chsyscfg,
    chsysstate,
    common,
    diagrmc,
    lslparmigr,
    lsrefcode,
    lssyscfg,
    migrlpar,
)
from lpmlab.cli import mkvterm as vterm
from lpmlab.errors import UsageError
from lpmlab.hmc import authkeys, records
from lpmlab.hmc.precopy import Controls

MV = ["-o", "v", "-m", "sys1", "-t", "sys2"]


@pytest.fixture(autouse=True)
def no_lab(tmp_path, monkeypatch):
    """No lab: a command that got past its syntax checks would say LPM1002."""
    monkeypatch.setenv("LPMLAB_HOME", str(tmp_path))


def refused(main, argv, capsys) -> tuple[int, str]:
    rc = common.run(main, argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


@pytest.mark.parametrize("value", [" 2", "2 ", "+2", "\u0662", "\uff12", "1_0", "0x2", "2.0"])
@pytest.mark.parametrize("main, argv", [
    (chsysstate.main, ["-m", "sys1", "-r", "lpar", "-o", "on", "--id"]),
    (vterm.rmvterm, ["-m", "sys1", "--id"]),
    (vterm.mkvterm, ["-m", "sys1", "--id"]),
    (diagrmc.main, ["-m", "sys1", "--id"]),
    (lsrefcode.main, ["-r", "lpar", "-m", "sys1", "-n"]),
    (migrlpar.main, [*MV, "-p", "lpar1", "-w"]),
])
def test_numbers_are_ascii_digits(main, argv, value, capsys):
    # int() takes all of these: ' 2' and '٢' were partition 2
    rc, err = refused(main, [*argv, value], capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
    assert "is not a whole number" in err


def test_a_set_id_is_ascii_digits(capsys):
    rc, err = refused(migrlpar.main, ["-o", "set", "-r", "lpar", "-m", "sys1", "--id",
                                      "\u0661", "-i", "concurr_migration_perf_level=3"], capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")


@pytest.mark.parametrize("text, words", [
    ("lpar_names=a\nb", "line break"),
    ("a\rb", "line break"),
    ('"lpar_names=a', "invalid --filter"),
    ('"lpar_names=a"b', "invalid --filter"),
    ("lpar_names=", "names nothing"),
    ("lpar_ids=", "names nothing"),
])
def test_a_broken_filter_is_a_usage_error(text, words):
    # csv.Error escaped as a traceback; an empty list selected every partition
    with pytest.raises(UsageError, match=words):
        records.parse_filter(text, ["lpar_names", "lpar_ids"])


def test_a_good_filter_still_parses():
    assert records.parse_filter('"lpar_names=a,b",lpar_ids=2', ["lpar_names", "lpar_ids"]) \
        == {"lpar_names": ["a", "b"], "lpar_ids": ["2"]}


@pytest.mark.parametrize("main, argv", [
    (chsyscfg.main, ["-r", "lpar", "-m", "sys1", "-f", ""]),
    (migrlpar.main, [*MV, "-p", "lpar1", "-f", ""]),
])
def test_an_empty_attribute_file_name_is_refused(main, argv, capsys):
    # chsyscfg died with a TypeError; migrlpar took it for "no attributes" and went on
    rc, err = refused(main, argv, capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
    assert "-f '' is empty" in err


@pytest.mark.parametrize("kw", [
    {"mover_bandwidth_mib": float("nan")}, {"mover_bandwidth_mib": float("inf")},
    {"max_speed_mib": 10**25}, {"max_downtime_ms": 10**25}, {"max_downtime_ms": 0},
])
def test_convergence_controls_are_finite_and_bounded(kw):
    # NaN passed the "at least 1" check and failed mid-migration (round(nan))
    with pytest.raises(UsageError, match="must be a number from 1 to"):
        Controls(**kw)


@pytest.mark.parametrize("argv, words", [
    ([*MV, "-p", "lpar1", "-w", "1441"], "-w 1441"),
    ([*MV, "-p", "lpar1,lpar1"], "named twice"),
    ([*MV, "--id", "2,3,2"], "named twice"),
    (["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "--mover-bandwidth", "nan"],
     "--mover-bandwidth nan"),
])
def test_migrlpar_refuses_before_the_lab(argv, words, capsys):
    rc, err = refused(migrlpar.main, argv, capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
    assert words in err


@pytest.mark.parametrize("main, argv, opt", [
    # -o set -r sys -m '' changed the policy of every managed system
    (migrlpar.main, ["-o", "set", "-r", "sys", "-m", "", "-i", "inactive_prof_policy=config"],
     "-m"),
    # lssyscfg -r sys -m '' listed every managed system (the CI fuzz run found it)
    (lssyscfg.main, ["-r", "sys", "-m", ""], "-m"),
    (lsrefcode.main, ["-r", "sys", "-m", ""], "-m"),
    (lslparmigr.main, ["-r", "msp", "-m", "sys1", "-t", ""], "-t"),
    (migrlpar.main, [*MV[:4], "-t", "", "-p", "lpar1"], "-t"),
])
def test_an_empty_value_is_not_every_value(main, argv, opt, capsys):
    rc, err = refused(main, argv, capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
    assert f"{opt} '' is empty" in err


@pytest.mark.parametrize("line", [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== broken",  # a length, no key: was accepted
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",                 # the type name alone
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQA=",         # a 1-byte key
])
def test_a_public_key_cut_short_is_refused(line):
    with pytest.raises(UsageError) as exc:
        authkeys.parse_key(line)
    assert exc.value.code == "HSCLL475"


def test_whole_public_keys_are_accepted():
    from cryptography.hazmat.primitives import serialization as S
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    for key in (ed25519.Ed25519PrivateKey.generate(), rsa.generate_private_key(65537, 2048),
                ec.generate_private_key(ec.SECP256R1())):
        line = key.public_key().public_bytes(S.Encoding.OpenSSH, S.PublicFormat.OpenSSH)
        assert authkeys.parse_key(line.decode() + " u@h").comment == "u@h"


@pytest.mark.parametrize("extra", [["-t", "sys2"], ["--filter", "lpar_names=lpar1"],
                                   ["--ip", "hmc2"], ["-u", "hscroot"]])
def test_lslparmigr_mc_takes_no_system_or_partition(extra, capsys):
    rc, err = refused(lslparmigr.main, ["-r", "mc", *extra], capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
    assert f"{extra[0]} is not valid with -r mc" in err


def test_lslparmigr_mc_alone_still_answers(capsys):
    assert common.run(lslparmigr.main, ["-r", "mc"]) == 0
    assert "max_lpars_per_migrlpar_cmd=" in capsys.readouterr().out


@pytest.mark.parametrize("n", ["0", "1001", "9" * 25])
def test_lsrefcode_n_is_bounded(n, capsys):
    # 10**24 reached SQLite's LIMIT and died with an OverflowError
    rc, err = refused(lsrefcode.main, ["-r", "lpar", "-m", "sys1", "-n", n], capsys)
    assert (rc, err.split()[0]) == (2, "HSCL8001")
