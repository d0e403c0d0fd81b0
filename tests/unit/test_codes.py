"""The one code registry: each code defined once, every code raised is in it, and a code
exits the same way from the HMC core and from every command."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from lpmlab import codes, errors
from lpmlab.cli import (
    chsyscfg,
    chsysstate,
    common,
    diagrmc,
    lslparmigr,
    lssyscfg,
    migrlpar,
    mkvterm,
)
from lpmlab.errors import LpmlabError, NotFoundError
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import snapshot, system
from lpmlab.hmc import validation as V
from lpmlab.topology import load
from tests.unit.fakes import LabHmc

PACKAGE = Path(__file__).resolve().parents[2] / "lpmlab"
SOURCES = sorted(PACKAGE.rglob("*.py"))
REGISTRY_DIR = PACKAGE / "codes"
CODE_RE = re.compile(r"""["'](HSCL[0-9A-Z]{4,5}|LPM\d{4})["']""")


def outside_registry() -> list[Path]:
    return [p for p in SOURCES if REGISTRY_DIR not in p.parents]


# -- each code once, every code in the registry -----------------------------------------------
def test_no_code_is_defined_twice():
    assert len(codes.ALL) == len(codes.REGISTRY), sorted(
        c.code for c in codes.ALL if [d.code for d in codes.ALL].count(c.code) > 1)
    # no other table, and no code given to an exception by hand: outside the registry a code
    # is only ever looked up (codes.error, finding) or named as a constant
    defining = re.compile(r"""["'](HSCL|LPM)[0-9A-Z]+["']\s*:|\bcode\s*=\s*["'](HSCL|LPM)""")
    offenders = []
    for path in outside_registry():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if defining.search(line) and not (path.name == "errors.py"
                                              and line.strip().startswith("code = ")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert offenders == []


def test_every_code_named_in_the_source_is_in_the_registry():
    named = {m.group(1): path.relative_to(PACKAGE) for path in outside_registry()
             for m in CODE_RE.finditer(path.read_text())}
    assert named, "the scan found no codes at all"
    assert {c: p for c, p in named.items() if c not in codes.REGISTRY} == {}


def test_each_exception_class_default_code_is_registered_with_that_class():
    classes = [c for _n, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, LpmlabError)]
    assert len(classes) >= 10
    for cls in classes:
        assert codes.spec(cls.code).error is cls, cls


def test_codes_are_well_formed_and_their_templates_parse():
    for c in codes.ALL:
        assert re.fullmatch(r"HSCL[0-9A-Z]{4}|HSCLL\d{3}|LPM\d{4}", c.code), c.code
        assert c.title and c.message and c.fix, c.code
        assert c.family in ("lab", "commands", "migration", "validation", "rest"), c.code
        assert c.severity in ("error", "warning")
        assert all(name.isidentifier() for name in codes.fields(c.code)), c.code


def _calls(tree: ast.AST) -> list[tuple[ast.Call, str, set[str]]]:
    """(call, literal code, keyword names) of every codes.error/codes.text/finding call."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        first = node.args[0]
        if name in ("error", "text", "finding") and isinstance(first, ast.Constant) \
                and isinstance(first.value, str) and CODE_RE.fullmatch(repr(first.value)):
            if any(k.arg is None for k in node.keywords):
                continue  # **kw: not checkable here
            given = {k.arg for k in node.keywords if k.arg}
            if name == "finding":
                given.add("obj")  # finding's second argument
            out.append((node, first.value, given))
    return out


def test_every_raise_site_fills_its_code_template():
    """A placeholder left unfilled would turn an error into a KeyError: each call that names
    a code gives every field of that code's message and fix."""
    checked = 0
    missing = []
    for path in outside_registry():
        for node, code, given in _calls(ast.parse(path.read_text())):
            need = codes.fields(code) - set(codes.OPTIONAL)
            if need - given:
                missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {code}: "
                               f"{sorted(need - given)}")
            checked += 1
    assert checked > 100
    assert missing == []


def test_the_error_takes_the_class_and_words_of_its_code():
    err = codes.error("HSCL8012", obj="lpar9", sys="sys1")
    assert type(err) is NotFoundError and err.code == "HSCL8012"
    assert err.message == "The partition lpar9 was not found on managed system sys1."
    assert "lssyscfg -r lpar -m sys1" in err.fix
    with pytest.raises(KeyError):
        codes.error("HSCLX999")


def test_validation_reports_raise_the_class_of_their_first_code():
    snap = V.snapshot_from_topology(load())
    for request, cls in ((V.MigrationRequestView("lpar9", "sys1", "sys2"), NotFoundError),
                         (V.MigrationRequestView("lpar1", "sys1", "sys1"), errors.UsageError),
                         (V.MigrationRequestView("lpar1", "sys1", "sys2", migration_type=
                                                 "inactive"), errors.MigrationError)):
        with pytest.raises(LpmlabError) as e:
            V.validate(snap, request).raise_for_errors()
        assert type(e.value) is cls and e.value.exit_code == codes.spec(e.value.code).exit_code


# -- HSCL8012 exits the same way everywhere ----------------------------------------------------
@pytest.fixture
def lab(tmp_path, monkeypatch):
    hmc = LabHmc(LabPlan.for_topology(load(), tmp_path))
    monkeypatch.setattr(system.Hmc, "open",
                        classmethod(lambda cls, lab_dir=None, console=None: hmc))
    monkeypatch.setattr(snapshot, "inventory",
                        lambda hmc: V.snapshot_from_topology(hmc.topology))
    return hmc


MISSING = [
    (lssyscfg.main, ["-r", "lpar", "-m", "sys1", "--filter", "lpar_names=nosuch"]),
    (lssyscfg.main, ["-r", "lpar", "-m", "sys1", "--filter", "lpar_ids=99", "-F", "name"]),
    (lssyscfg.main, ["-r", "lpar", "-m", "sys2", "--filter", "lpar_names=lpar1"]),
    (lslparmigr.main, ["-r", "mem", "-m", "sys1", "-t", "sys2", "--filter",
                       "lpar_names=nosuch"]),
    (chsysstate.main, ["-m", "sys1", "-r", "lpar", "-n", "nosuch", "-o", "on"]),
    (chsysstate.main, ["-m", "sys1", "-r", "lpar", "--id", "99", "-o", "shutdown"]),
    (chsyscfg.main, ["-r", "lpar", "-m", "sys1", "-i", "name=nosuch,migration_disabled=1"]),
    (chsyscfg.main, ["-r", "lpar", "-m", "sys1", "-i", "lpar_id=99,migration_disabled=1"]),
    (diagrmc.main, ["-m", "sys1", "-p", "nosuch"]),
    (migrlpar.main, ["-o", "v", "-m", "sys1", "-t", "sys2", "--id", "99"]),
    (migrlpar.main, ["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios9", "-i",
                     "concurr_migration_perf_level=2"]),
    (mkvterm.mkvterm, ["-m", "sys1", "-p", "nosuch"]),
]


def test_the_core_raises_hscl8012_with_the_registry_class(lab):
    with pytest.raises(LpmlabError) as e:
        lab.locate("nosuch", "sys1")
    assert e.value.code == "HSCL8012"
    assert e.value.exit_code == codes.spec("HSCL8012").exit_code == NotFoundError.exit_code


@pytest.mark.parametrize("main, argv", MISSING,
                         ids=[f"{m.__module__.rsplit('.', 1)[-1]}:{' '.join(a)}"
                              for m, a in MISSING])
def test_every_command_exits_the_same_for_hscl8012(lab, capsys, main, argv):
    rc = common.run(main, argv)
    out, err = capsys.readouterr()
    assert err.startswith("HSCL8012 The partition "), err
    assert rc == codes.spec("HSCL8012").exit_code == NotFoundError.exit_code
    assert out == ""  # nothing listed, nothing changed


def test_a_filtered_lookup_names_the_partition_and_where_it_is(lab, capsys):
    rc = common.run(lssyscfg.main, ["-r", "lpar", "-m", "sys2", "--filter",
                                    "lpar_names=lpar1,vios2"])
    _out, err = capsys.readouterr()
    assert rc == 4
    # the same words as the core's HSCL8012: where the partition is instead
    assert err.splitlines()[0] == ("HSCL8012 The partition lpar1 was not found on managed "
                                   "system sys2. It is on sys1.")
    assert err.splitlines()[1].startswith("Fix: list the partitions with 'lssyscfg -r lpar "
                                          "-m sys2")


# -- the docs ----------------------------------------------------------------------------------
def test_docs_give_each_code_the_exit_code_it_has():
    """docs/hmc.md's exit-code table: every code in the row of its class's exit code."""
    text = (PACKAGE.parent / "docs" / "hmc.md").read_text()
    section = text[text.index("| exit | family (class) | codes |"):]
    rows = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        exit_code, _family, listed = (cell.strip() for cell in line.strip("|").split("|"))
        rows[int(exit_code)] = listed

    def listed(code: str, row: str) -> bool:
        if f"`{code}`" in row:
            return True
        for lo, hi in re.findall(r"`(\w+)`–`(\w+)`", row):  # a range: `HSCLL420`–`HSCLL426`
            if lo[:-3] == hi[:-3] == code[:-3] and lo <= code <= hi:
                return True
        return (codes.spec(code).family == "validation" and code.startswith("HSCLL5")
                and "`HSCLL5xx`" in row)

    for c in codes.ALL:
        assert listed(c.code, rows[c.exit_code]), (c.code, c.exit_code)
        others = [e for e, row in rows.items() if e != c.exit_code and f"`{c.code}`" in row]
        assert others == [], (c.code, others)
