"""The migrlpar -i / -f attribute parser: tokenizer, schema, files, and fuzzing."""

import csv
import io
import os
import re
import shlex
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmlab.errors import UsageError
from lpmlab.hmc import attributes as A
from lpmlab.hmc.attributes import (
    LparDestId,
    LparPoolName,
    LparProfileName,
    LparVscsiMapping,
    MigrationAttributes,
    MspRef,
    VfcMapping,
    VscsiMapping,
    format_attributes,
    parse_attributes,
    read_attribute_file,
    split_fields,
)
from lpmlab.hmc.records import format_record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "attributes.md"
# Modest example counts keep the file under 10 s; no example database in the repository.
_QUIET = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
FUZZ = settings(max_examples=300, **_QUIET)
ROUND = settings(max_examples=80, **_QUIET)


def error(text, **kw) -> UsageError:
    with pytest.raises(UsageError) as info:
        parse_attributes(text, **kw)
    return info.value


def i_arg(command_line):
    """The -i argument as the program receives it after the shell."""
    argv = shlex.split(command_line)
    return argv[argv.index("-i") + 1]


# -- the examples of hmc-reference.md -----------------------------------------------------------

def test_reference_example_vscsi_mappings_and_msp_names():
    text = i_arg(r'migrlpar -o v -m sys1 -t sys2 -p lp1 -i "\"virtual_scsi_mappings=12/vios1/,'
                 r'13/vios2/\",dest_msp_name=vios1,source_msp_name=vios1"')
    assert text == ('"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1,'
                    'source_msp_name=vios1')
    got = parse_attributes(text)
    assert got.virtual_scsi_mappings == [VscsiMapping(12, "vios1", None, None),
                                         VscsiMapping(13, "vios2", None, None)]
    assert got.dest_msp_name == "vios1"
    assert got.source_msp_name == "vios1"
    assert got.raw == {"virtual_scsi_mappings": "12/vios1/,13/vios2/", "dest_msp_name": "vios1",
                       "source_msp_name": "vios1"}
    assert set(got.given()) == {"virtual_scsi_mappings", "dest_msp_name", "source_msp_name"}


def test_reference_example_msp_ids():
    text = i_arg('migrlpar -o m -m sys1 -t sys2 --id 5 -n migprof '
                 '-i "dest_msp_id=1,source_msp_id=3"')
    got = parse_attributes(text, allowed=A.MIGRATE_ATTRIBUTES)
    assert (got.dest_msp_id, got.source_msp_id) == (1, 3)
    assert got.given() == {"source_msp_id": 3, "dest_msp_id": 1}


@pytest.mark.parametrize("policy", ["prof", "config"])
def test_reference_set_sys_inactive_prof_policy(policy):
    text = i_arg(f'migrlpar -o set -r sys -m sys1 -i "inactive_prof_policy={policy}"')
    assert parse_attributes(text, allowed=A.SET_SYS_ATTRIBUTES).inactive_prof_policy == policy


def test_reference_set_lpar_on_a_vios():
    text = i_arg('migrlpar -o set -r lpar -m sys1 -p vios1 '
                 '-i "num_active_migrations_configured=4,concurr_migration_perf_level=3"')
    got = parse_attributes(text, allowed=A.SET_LPAR_ATTRIBUTES)
    assert got.num_active_migrations_configured == 4
    assert got.concurr_migration_perf_level == 3


def test_reference_forms_of_list_attributes():
    got = parse_attributes('"virtual_fc_mappings=30/vios1/1/40,31//2",'
                           '"source_msps=vios1/1/10.1.0.11,vios2//",dest_msps=//10.2.0.12')
    assert got.virtual_fc_mappings == [VfcMapping(30, "vios1", 1, 40), VfcMapping(31, None, 2)]
    assert got.source_msps == [MspRef("vios1", 1, IPv4Address("10.1.0.11")),
                               MspRef("vios2", None, None)]
    assert got.dest_msps == [MspRef(None, None, IPv4Address("10.2.0.12"))]


def test_reference_forms_of_multiple_partition_attributes():
    got = parse_attributes(
        '"multiple_dest_lpar_ids=lp1//7,/9/8,lp3/4/9",'
        '"multiple_virtual_scsi_mappings=lp1//12/vios3/,lp1//13//2/20,/9/12/vios4/3",'
        '"multiple_shared_proc_pool_names=lp1//pool1,/9/DefaultPool",'
        '"multiple_profile_names=lp1//migprof,/9/default"')
    assert got.multiple_dest_lpar_ids == [LparDestId("lp1", None, 7), LparDestId(None, 9, 8),
                                          LparDestId("lp3", 4, 9)]
    assert got.multiple_virtual_scsi_mappings == [
        LparVscsiMapping("lp1", None, VscsiMapping(12, "vios3", None)),
        LparVscsiMapping("lp1", None, VscsiMapping(13, None, 2, 20)),
        LparVscsiMapping(None, 9, VscsiMapping(12, "vios4", 3)),
    ]
    assert got.multiple_shared_proc_pool_names == [LparPoolName("lp1", None, "pool1"),
                                                   LparPoolName(None, 9, "DefaultPool")]
    assert got.multiple_profile_names == [LparProfileName("lp1", None, "migprof"),
                                          LparProfileName(None, 9, "default")]


def test_lslparmigr_sys_record_splits_like_input():
    line = ("inactive_lpar_mobility_capable=1,num_inactive_migrations_supported=4,"
            "num_inactive_migrations_in_progress=0,active_lpar_mobility_capable=1,"
            "num_active_migrations_supported=16,num_active_migrations_in_progress=0,"
            "inactive_prof_policy=config")
    pairs = split_fields(line)
    assert len(pairs) == 7
    assert pairs[-1] == ("inactive_prof_policy", "config")


def test_output_records_split_back_to_their_values():
    rec = {"name": "lpar1", "virtual_scsi_adapters": "12/vios1/1,13/vios2/1", "desc": 'a "b", c'}
    assert split_fields(format_record(rec)) == list(rec.items())


# -- tokenizer ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,pairs", [
    ("", []),
    ("a=1", [("a", "1")]),
    ("a=1,b=2", [("a", "1"), ("b", "2")]),
    ('"a=1,2",b=3', [("a", "1,2"), ("b", "3")]),
    ('b=3,"a=1,2"', [("b", "3"), ("a", "1,2")]),
    ('"a=x""y"",z"', [("a", 'x"y",z')]),            # a doubled quote is a literal one
    ('"a=""quoted"""', [("a", '"quoted"')]),
    ('"a="""', [("a", '"')]),
    ("a=b=c", [("a", "b=c")]),                       # the first '=' splits
    ("a=1\nb=2", [("a", "1"), ("b", "2")]),          # -f with one attribute per line
    ("a=1,\nb=2,\n", [("a", "1"), ("b", "2")]),      # comma at line ends, trailing newline
    ("a=1\r\nb=2\r\n", [("a", "1"), ("b", "2")]),
    ("a=1\rb=2", [("a", "1"), ("b", "2")]),
    ("\n\na=1\n\n\nb=2\n\n", [("a", "1"), ("b", "2")]),
    ("  \n\t\n", []),
    ("a=1,", [("a", "1")]),
    ('a=1,\n  "b=2,3"\n', [("a", "1"), ("b", "2,3")]),  # indented quoted field
    (" a = 1 , b=2 ", [("a", "1"), ("b", "2")]),      # blanks around names and values
    ('"a=1,\n2"', [("a", "1,\n2")]),                 # a line break inside quotes is kept
    ("a=\u00e9\u4e2d", [("a", "\u00e9\u4e2d")]),
])
def test_split_fields(text, pairs):
    assert split_fields(text) == pairs


@pytest.mark.parametrize("text,words", [
    ('"virtual_scsi_mappings=12/vios1/,13/vios2/', ["unterminated", "virtual_scsi_mappings",
                                                     "column 1"]),
    ('dest_lpar_id=5,"dest_msp_name=vios1', ["unterminated", "dest_msp_name", "column 16"]),
    ('"a=x""', ["unterminated"]),
    ('"', ["unterminated"]),
    ('"virtual_scsi_mappings=12/vios1/"x,b=1', ["after the closing quote",
                                                "virtual_scsi_mappings", "column 34"]),
    ('"a=1" ,b=2', ["after the closing quote"]),
    ('virtual_scsi_mappings="12/vios1/,13/vios2/"', ["double quote inside",
                                                     "virtual_scsi_mappings", "column 23"]),
    ('dest_msp_name=vi"os1', ["double quote inside", "dest_msp_name"]),
    ("a=1,,b=2", ["empty attribute", "column 5"]),
    (",a=1", ["empty attribute", "column 1"]),
    ("a=1, ,b=2", ["empty attribute"]),
    ("a=1\n,b=2", ["empty attribute", "line 2, column 1"]),
    ("abc", ["'abc'", "no '='"]),
    ('""', ["no '='"]),
    ("a=1,b", ["'b'", "column 5", "no '='"]),
    ("=5", ["empty attribute name"]),
    ('" =5"', ["empty attribute name"]),
    ("dest_lpar_id=5,dest_lpar_id=6", ["dest_lpar_id", "twice", "column 1", "column 16"]),
    ("dest_lpar_id=5\n dest_lpar_id=5", ["twice", "line 1, column 1", "line 2, column 2"]),
    ("a" * (A.MAX_TEXT + 1), ["at most"]),
])
def test_malformed_text_is_a_syntax_error(text, words):
    e = error(text)
    assert e.code == "HSCL8001" == A.SYNTAX
    assert e.exit_code == 2
    for w in words:
        assert w in e.message
    assert e.fix


def test_unquoted_list_hints_at_quoting():
    e = error("virtual_scsi_mappings=12/vios1/,13/vios2/")
    assert e.code == A.SYNTAX
    assert "'13/vios2/'" in e.message
    assert '"virtual_scsi_mappings=' in e.fix


def test_quoted_value_instead_of_field_hints_at_quoting():
    e = error('source_msps="vios1//,vios2//"')
    assert 'quote the whole field, not only the value: "source_msps=' in e.fix


# -- schema: scalars ------------------------------------------------------------------------------

INTS = [
    ("dest_lpar_id", 1, 1000),
    ("source_msp_id", 1, 1000),
    ("dest_msp_id", 1, 1000),
    ("shared_proc_pool_id", 0, 63),
    ("concurr_migration_perf_level", 1, 5),
    ("num_active_migrations_configured", 0, None),
]


@pytest.mark.parametrize("name,lo,hi", INTS)
def test_integer_attributes_take_their_range(name, lo, hi):
    assert getattr(parse_attributes(f"{name}={lo}"), name) == lo
    assert getattr(parse_attributes(f"{name}=0{lo}"), name) == lo       # leading zeros are fine
    if hi is not None:
        assert getattr(parse_attributes(f"{name}={hi}"), name) == hi
        assert error(f"{name}={hi + 1}").code == A.BAD_VALUE
    else:
        assert getattr(parse_attributes(f"{name}=999999"), name) == 999999
        assert error(f"{name}=99999999999").code == A.BAD_VALUE
    if lo > 0:
        assert error(f"{name}={lo - 1}").code == A.BAD_VALUE


@pytest.mark.parametrize("value", ["-1", "+3", "3.0", "0x3", "1_0", "\u0663", "three", "3a",
                                   "", "3 4", "1" * 5000])
@pytest.mark.parametrize("name", [n for n, _, _ in INTS])
def test_integer_attributes_refuse_non_numbers(name, value):
    e = error(f'"{name}={value}"')
    assert e.code == A.BAD_VALUE
    assert name in e.message
    assert name in e.fix


@pytest.mark.parametrize("name", ["source_msp_name", "dest_msp_name", "shared_proc_pool_name"])
def test_name_attributes(name):
    assert getattr(parse_attributes(f"{name}=vios 1"), name) == "vios 1"
    assert getattr(parse_attributes(f"{name}=\u00e9t\u00e9"), name) == "\u00e9t\u00e9"
    for bad in ["x,y", "x/y", "x\x00y", "x\x1by", "x\u2028y", "x\u200by", 'x""y']:
        e = error(f'"{name}={bad}"')
        assert e.code == A.BAD_VALUE, bad
        assert name in e.message


@pytest.mark.parametrize("name", ["source_msp_ipaddr", "dest_msp_ipaddr"])
def test_ip_attributes(name):
    assert getattr(parse_attributes(f"{name}=10.1.0.11"), name) == IPv4Address("10.1.0.11")
    for bad in ["10.1.0", "10.1.0.256", "010.1.0.1", "fe80::1", "host1", "10.1.0.1/24"]:
        e = error(f"{name}={bad}")
        assert e.code == A.BAD_VALUE, bad
        assert "IPv4" in e.message


def test_inactive_prof_policy_is_prof_or_config():
    for bad in ["Prof", "CONFIG", "profile", "1"]:
        e = error(f"inactive_prof_policy={bad}")
        assert e.code == A.BAD_VALUE
        assert "prof, config" in e.message


@pytest.mark.parametrize("name", A.ATTRIBUTES)
def test_empty_value_is_refused(name):
    e = error(f"{name}=")
    assert e.code == A.BAD_VALUE
    assert "empty value" in e.message and name in e.message


def test_blanks_around_values_and_items_are_ignored():
    got = parse_attributes('dest_lpar_id = 5 ,"virtual_scsi_mappings= 12 / vios1 / ,\n13//2 "')
    assert got.dest_lpar_id == 5
    assert got.virtual_scsi_mappings == [VscsiMapping(12, "vios1", None), VscsiMapping(13, None, 2)]


# -- schema: lists --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("virtual_scsi_mappings", VscsiMapping),
                                      ("virtual_fc_mappings", VfcMapping)])
def test_adapter_mappings(name, cls):
    got = getattr(parse_attributes(f'"{name}=12/vios1/,13//2,14/vios3/3/40,15//4/"'), name)
    assert got == [cls(12, "vios1", None, None), cls(13, None, 2, None), cls(14, "vios3", 3, 40),
                   cls(15, None, 4, None)]
    assert all(type(m) is cls for m in got)


@pytest.mark.parametrize("item,words", [
    ("12/vios1", ["2 '/'-separated parts"]),
    ("12", ["1 '/'-separated parts"]),
    ("12/vios1/1/40/5", ["5 '/'-separated parts"]),
    ("12//", ["neither the VIOS name nor its ID"]),
    ("/vios1/", ["client slot is empty"]),
    ("x/vios1/", ["client slot 'x'"]),
    ("1/vios1/", ["client slot '1' is out of range"]),
    ("65536/vios1/", ["out of range"]),
    ("12/vios1/0", ["VIOS ID '0' is out of range"]),
    ("12/vios1/1001", ["VIOS ID"]),
    ("12/vios1/1/x", ["VIOS slot 'x'"]),
    ("12/vi\tos1/", ["VIOS name"]),
])
@pytest.mark.parametrize("name", ["virtual_scsi_mappings", "virtual_fc_mappings"])
def test_bad_adapter_mapping_items(name, item, words):
    e = error(f'"{name}=13/vios2/,{item}"')
    assert e.code == A.BAD_ITEM
    assert f"attribute {name}, item 2" in e.message
    for w in words:
        assert w in e.message
    assert "client-slot/vios-name/vios-id[/vios-slot]" in e.fix


@pytest.mark.parametrize("name", ["source_msps", "dest_msps"])
def test_msp_lists(name):
    got = getattr(parse_attributes(f'"{name}=vios1/1/10.0.0.1,vios2//,/3/,//10.0.0.4"'), name)
    assert got == [MspRef("vios1", 1, IPv4Address("10.0.0.1")), MspRef("vios2", None, None),
                   MspRef(None, 3, None), MspRef(None, None, IPv4Address("10.0.0.4"))]
    for bad, words in [("//", "neither the MSP name"), ("vios1/1", "2 '/'-separated"),
                       ("vios1/1/10.0.0.1/x", "4 '/'-separated"), ("vios1/x/", "MSP ID"),
                       ("vios1//10.0.0", "not an IPv4 address"), ("", "is empty")]:
        e = error(f'"{name}=vios9//,{bad}"')
        assert e.code == A.BAD_ITEM, bad
        assert f"{name}, item 2" in e.message and words in e.message


@pytest.mark.parametrize("text,words", [
    ('"multiple_dest_lpar_ids=lp1//7,//8"', ["item 2", "neither the partition name nor its ID"]),
    ('"multiple_dest_lpar_ids=lp1//7,lp2/3/"', ["destination partition ID is empty"]),
    ('"multiple_dest_lpar_ids=lp1//7,lp2/3/1001"', ["destination partition ID"]),
    ('"multiple_dest_lpar_ids=lp1//7,lp2/7"', ["2 '/'-separated"]),
    ('"multiple_virtual_scsi_mappings=lp1//12/vios1"', ["4 '/'-separated parts, expected 5 or 6"]),
    ('"multiple_virtual_scsi_mappings=//12/vios1/"', ["neither the partition"]),
    ('"multiple_virtual_scsi_mappings=lp1//12//"', ["neither the VIOS"]),
    ('"multiple_shared_proc_pool_names=lp1//"', ["pool name is empty"]),
    ('"multiple_shared_proc_pool_names=lp1/x/p"', ["partition ID 'x'"]),
    ('"multiple_profile_names=lp1//"', ["profile name is empty"]),
    ('"multiple_profile_names=lp1/1/a/b"', ["4 '/'-separated"]),
])
def test_bad_multiple_partition_items(text, words):
    e = error(text)
    assert e.code == A.BAD_ITEM
    for w in words:
        assert w in e.message


@pytest.mark.parametrize("text,what", [
    ('"virtual_scsi_mappings=12/vios1/,12//2"', "client slot 12"),
    ('"virtual_fc_mappings=30/vios1/,31/vios1/,30//1"', "client slot 30"),
    ('"source_msps=vios1//,vios1/2/"', "MSP vios1"),
    ('"dest_msps=/1/,vios2/1/"', "MSP ID 1"),
    ('"multiple_dest_lpar_ids=lp1//7,lp1//8"', "partition lp1"),
    ('"multiple_dest_lpar_ids=lp1//7,lp2//7"', "destination ID 7"),
    ('"multiple_dest_lpar_ids=/4/7,lp2/4/8"', "partition ID 4"),
    ('"multiple_virtual_scsi_mappings=lp1//12/vios1/,lp1//12/vios2/"', "partition lp1 client "
                                                                       "slot 12"),
    ('"multiple_shared_proc_pool_names=lp1//a,lp1//b"', "partition lp1"),
    ('"multiple_profile_names=/3/a,/3/b"', "partition ID 3"),
])
def test_repeated_items(text, what):
    e = error(text)
    assert e.code == A.REPEATED
    assert what in e.message


def test_same_slot_of_different_partitions_is_fine():
    got = parse_attributes('"multiple_virtual_scsi_mappings=lp1//12/vios1/,lp2//12/vios1/"')
    assert len(got.multiple_virtual_scsi_mappings) == 2


# -- names, operations, exclusions ----------------------------------------------------------------

def test_unknown_attribute_is_named_with_valid_ones_and_a_suggestion():
    e = error("dest_lpar_id=5,dest_msp_nmae=vios1")
    assert e.code == A.UNKNOWN
    assert "'dest_msp_nmae'" in e.message
    assert "did you mean dest_msp_name?" in e.fix
    for name in A.ATTRIBUTES:
        assert name in e.fix


def test_names_are_case_sensitive():
    assert error("DEST_LPAR_ID=5").code == A.UNKNOWN


@pytest.mark.parametrize("text", ["dest_lpar_id=5", "virtual_scsi_mappings=12/vios1/",
                                  "dest_msp_name=vios1"])
def test_set_refuses_migration_attributes(text):
    e = error(text, allowed=A.SET_ATTRIBUTES)
    assert e.code == A.NOT_ALLOWED
    assert text.split("=")[0] in e.message
    assert "num_active_migrations_configured" in e.fix and "dest_lpar_id" not in e.fix


def test_migrate_refuses_set_only_attributes():
    e = error("num_active_migrations_configured=4", allowed=A.MIGRATE_ATTRIBUTES)
    assert e.code == A.NOT_ALLOWED


def test_unknown_name_under_allowed_lists_the_allowed_ones():
    e = error("bogus=1", allowed=A.SET_SYS_ATTRIBUTES)
    assert e.code == A.UNKNOWN
    assert e.fix.endswith("valid attributes here: inactive_prof_policy")


def test_allowed_with_an_unknown_name_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_attributes("", allowed={"bogus"})


def test_allowed_empty_refuses_everything_but_accepts_no_attributes():
    assert parse_attributes("", allowed=()) == MigrationAttributes()
    assert error("dest_lpar_id=5", allowed=()).code == A.NOT_ALLOWED


@pytest.mark.parametrize("a,b", [
    ("shared_proc_pool_name=p1", "shared_proc_pool_id=1"),
    ('"source_msps=vios1//"', "source_msp_name=vios1"),
    ('"source_msps=vios1//"', "source_msp_id=1"),
    ('"source_msps=vios1//"', "source_msp_ipaddr=10.0.0.1"),
    ('"dest_msps=vios1//"', "dest_msp_name=vios1"),
    ('"dest_msps=vios1//"', "dest_msp_id=1"),
    ('"dest_msps=vios1//"', "dest_msp_ipaddr=10.0.0.1"),
    ("dest_lpar_id=5", '"multiple_dest_lpar_ids=lp1//5"'),
    ("dest_lpar_id=5", '"multiple_profile_names=lp1//p"'),
    ('"virtual_scsi_mappings=12/vios1/"', '"multiple_virtual_scsi_mappings=lp1//12/vios1/"'),
    ('"virtual_fc_mappings=12/vios1/"', '"multiple_dest_lpar_ids=lp1//5"'),
    ("shared_proc_pool_name=p1", '"multiple_shared_proc_pool_names=lp1//p1"'),
    ("shared_proc_pool_id=1", '"multiple_shared_proc_pool_names=lp1//p1"'),
])
def test_mutually_exclusive_attributes(a, b):
    name_a, name_b = (re.match(r'"?(\w+)=', t).group(1) for t in (a, b))
    for text, first, second in ((f"{a},{b}", name_a, name_b), (f"{b},{a}", name_b, name_a)):
        e = error(text)
        assert e.code == A.EXCLUSIVE
        assert f"attributes {first} and {second} cannot be used together" in e.message


def test_msp_name_id_and_address_may_be_combined():
    got = parse_attributes("source_msp_name=vios1,source_msp_id=1,source_msp_ipaddr=10.0.0.1,"
                           "dest_msp_name=vios3,dest_msp_id=1,dest_msp_ipaddr=10.0.1.1")
    assert (got.source_msp_name, got.source_msp_id, got.dest_msp_ipaddr) == \
        ("vios1", 1, IPv4Address("10.0.1.1"))


def test_multiple_forms_combine_with_msps_and_perf_level():
    got = parse_attributes('"multiple_dest_lpar_ids=lp1//7,lp2//8",'
                           '"multiple_profile_names=lp1//a,lp2//b",'
                           '"source_msps=vios1//,vios2//",concurr_migration_perf_level=2')
    assert len(got.multiple_dest_lpar_ids) == 2 and got.concurr_migration_perf_level == 2


def test_syntax_errors_come_before_schema_errors():
    assert error("bogus=1,,").code == A.SYNTAX      # the empty field wins over the unknown name


# -- the result type ------------------------------------------------------------------------------

def test_result_is_frozen_and_lists_every_attribute():
    got = parse_attributes("dest_lpar_id=5")
    with pytest.raises(AttributeError):
        got.dest_lpar_id = 6
    fields = [f for f in MigrationAttributes.__dataclass_fields__ if f != "raw"]
    assert tuple(fields) == A.ATTRIBUTES
    assert (A.SET_ATTRIBUTES | A.MIGRATE_ATTRIBUTES).issubset(A.ATTRIBUTES)


def test_empty_text_gives_empty_result():
    assert parse_attributes("") == MigrationAttributes()
    assert parse_attributes("\n").given() == {}


def test_codes_table_and_docs_agree():
    assert set(A.CODES) == {"HSCL8001", "HSCLL420", "HSCLL421", "HSCLL422", "HSCLL423",
                            "HSCLL424", "HSCLL425", "HSCLL426"}
    doc = DOCS.read_text()
    for code in A.CODES:
        assert f"`{code}`" in doc
    for name in A.ATTRIBUTES:
        assert f"`{name}`" in doc


# -- format_attributes ----------------------------------------------------------------------------

def test_format_quotes_only_list_fields():
    got = parse_attributes('"virtual_scsi_mappings=12/vios1/,13//2/20",dest_msps=vios3//10.0.0.1')
    text = format_attributes({"dest_lpar_id": 5, "virtual_scsi_mappings":
                              got.virtual_scsi_mappings, "dest_msps": got.dest_msps})
    assert text == ('dest_lpar_id=5,"virtual_scsi_mappings=12/vios1/,13//2/20",'
                    'dest_msps=vios3//10.0.0.1')


def test_format_of_a_result_and_of_none():
    got = parse_attributes('"source_msps=vios1/1/,/2/10.0.0.2",dest_lpar_id=7')
    text = format_attributes(got)
    assert text == 'dest_lpar_id=7,"source_msps=vios1/1/,/2/10.0.0.2"'
    assert parse_attributes(text) == got
    assert format_attributes({"dest_lpar_id": None}) == ""


def test_format_doubles_quotes():
    text = format_attributes({"note": 'say "hi", then go', "x": 'a"b'})
    assert text == '"note=say ""hi"", then go","x=a""b"'
    assert split_fields(text) == [("note", 'say "hi", then go'), ("x", 'a"b')]


# -- -f files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    '"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1',
    '"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1\n',
    '"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1\r\n',
    '"virtual_scsi_mappings=12/vios1/,13/vios2/"\ndest_msp_name=vios1\n',
    '"virtual_scsi_mappings=12/vios1/,13/vios2/",\ndest_msp_name=vios1,\n\n',
    '"virtual_scsi_mappings=12/vios1/,\n13/vios2/"\n  dest_msp_name=vios1\n',
    '\ufeff"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1\n',   # BOM
])
def test_attribute_file_forms(tmp_path, content):
    f = tmp_path / "attrs"
    f.write_bytes(content.encode("utf-8"))
    got = parse_attributes(read_attribute_file(f))
    assert got.given() == {"virtual_scsi_mappings": [VscsiMapping(12, "vios1", None),
                                                     VscsiMapping(13, "vios2", None)],
                           "dest_msp_name": "vios1"}
    assert read_attribute_file(str(f)) == read_attribute_file(f)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "no-such-file"
    with pytest.raises(UsageError) as info:
        read_attribute_file(path)
    assert info.value.code == A.NO_FILE
    assert str(path) in info.value.message and "No such file" in info.value.message


def test_directory_and_nul_path_are_usage_errors(tmp_path):
    for path in (tmp_path, "bad\x00path"):
        with pytest.raises(UsageError) as info:
            read_attribute_file(path)
        assert info.value.code == A.NO_FILE


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    f = tmp_path / "secret"
    f.write_text("dest_lpar_id=5")
    f.chmod(0)
    with pytest.raises(UsageError) as info:
        read_attribute_file(f)
    assert info.value.code == A.NO_FILE and str(f) in info.value.message


def test_non_utf8_and_huge_files(tmp_path):
    f = tmp_path / "latin1"
    f.write_bytes(b"dest_msp_name=vi\xe9s1")
    with pytest.raises(UsageError) as info:
        read_attribute_file(f)
    assert info.value.code == A.NO_FILE and "UTF-8" in info.value.message
    big = tmp_path / "big"
    big.write_bytes(b"a" * (A.MAX_TEXT * 4 + 1))
    with pytest.raises(UsageError) as info:
        read_attribute_file(big)
    assert info.value.code == A.SYNTAX


def test_large_valid_input_parses():
    items = [f"{slot}/vios{slot % 7}/" for slot in range(2, 4000)]
    text = f'"virtual_scsi_mappings={",".join(items)}",dest_lpar_id=5'
    assert len(text) < A.MAX_TEXT
    assert len(parse_attributes(text).virtual_scsi_mappings) == len(items)


# -- property-based -------------------------------------------------------------------------------

def check_error(e: UsageError) -> None:
    """Every failure is a UsageError with a known code that can be printed."""
    assert e.code in A.CODES
    assert e.exit_code == 2
    assert e.fix
    e.render().encode("utf-8")     # no lone surrogates leak into the message


TOKENS = list(A.ATTRIBUTES) + ["=", ",", '"', '""', "/", "//", "12", "0", "1001", "vios1",
                               "10.0.0.1", "\n", "\r", " ", "\t", "x", "\x00", "\u00e9",
                               "\udcff", "\u2028", "prof"]


@FUZZ
@given(st.one_of(st.text(), st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)))
def test_any_text_gives_a_result_or_a_usage_error(text):
    try:
        got = parse_attributes(text)
    except UsageError as e:
        check_error(e)
    else:
        assert isinstance(got, MigrationAttributes)
        assert parse_attributes(format_attributes(got)).given() == got.given()


WS = " \t\r\n"


@FUZZ
@given(st.text(st.sampled_from('ab=,"\n\r'), max_size=30))
def test_split_fields_reads_like_the_csv_module(text):
    try:
        mine = split_fields(text)
    except UsageError as e:
        check_error(e)
        mine = None
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        assert mine is None        # what csv refuses, we refuse
        return
    if mine is None:
        return                     # we are stricter: stray quotes, empty fields, no '=', twice
    expected = []
    for row in rows:
        while row and row[-1] == "":
            row = row[:-1]         # a trailing comma (and a blank line) is accepted
        for f in row:
            name, _, value = f.partition("=")
            expected.append(f"{name.strip(WS)}={value.strip(WS)}")
    assert ["=".join(p) for p in mine] == expected


# Valid attribute sets for the round trip, respecting every rule of the schema.
NAME = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"),
                             blacklist_characters=',"/'),
               min_size=1, max_size=8).map(lambda s: s.strip(WS)).filter(bool)
LPAR_ID = st.integers(1, 1000)
SLOT = st.integers(2, 65535)
IPV4 = st.ip_addresses(v=4)


def opt(s):
    return st.none() | s


def unique(keys):
    """Keep only items whose identities were not seen before (the schema refuses repeats)."""
    def dedupe(items):
        seen, out = set(), []
        for item in items:
            k = {x for x in keys(item) if x[-1] is not None}
            if seen.isdisjoint(k):
                seen |= k
                out.append(item)
        return out
    return dedupe


def list_of(item, keys):
    return st.lists(item, min_size=1, max_size=4).map(unique(keys))


def mapping(cls):
    return st.builds(cls, SLOT, opt(NAME), opt(LPAR_ID), opt(SLOT)).filter(
        lambda m: m.vios_name is not None or m.vios_id is not None)


LPAR_REF = st.tuples(opt(NAME), opt(LPAR_ID)).filter(lambda r: r != (None, None))
MSP = st.builds(MspRef, opt(NAME), opt(LPAR_ID), opt(IPV4)).filter(
    lambda m: (m.name, m.id, m.ipaddr) != (None, None, None))
MSPS = list_of(MSP, lambda m: [("n", m.name), ("i", m.id)])


def lpar_keys(p, *extra):
    return [("n", *extra, p.lpar_name), ("i", *extra, p.lpar_id)]


@st.composite
def attribute_sets(draw):
    d = {}
    if draw(st.booleans()):      # one partition
        d["dest_lpar_id"] = draw(opt(LPAR_ID))
        d["virtual_scsi_mappings"] = draw(opt(list_of(mapping(VscsiMapping),
                                                      lambda m: [("s", m.client_slot)])))
        d["virtual_fc_mappings"] = draw(opt(list_of(mapping(VfcMapping),
                                                    lambda m: [("s", m.client_slot)])))
        pool = draw(st.sampled_from([None, "shared_proc_pool_name", "shared_proc_pool_id"]))
        if pool:
            d[pool] = draw(NAME if pool.endswith("name") else st.integers(0, 63))
    else:                        # several partitions
        d["multiple_dest_lpar_ids"] = draw(opt(list_of(
            st.builds(lambda r, i: LparDestId(*r, i), LPAR_REF, LPAR_ID),
            lambda p: lpar_keys(p) + [("d", p.dest_lpar_id)])))
        d["multiple_virtual_scsi_mappings"] = draw(opt(list_of(
            st.builds(lambda r, m: LparVscsiMapping(*r, m), LPAR_REF, mapping(VscsiMapping)),
            lambda p: lpar_keys(p, p.mapping.client_slot))))
        d["multiple_shared_proc_pool_names"] = draw(opt(list_of(
            st.builds(lambda r, n: LparPoolName(*r, n), LPAR_REF, NAME), lpar_keys)))
        d["multiple_profile_names"] = draw(opt(list_of(
            st.builds(lambda r, n: LparProfileName(*r, n), LPAR_REF, NAME), lpar_keys)))
    for side in ("source", "dest"):
        if draw(st.booleans()):
            d[f"{side}_msps"] = draw(opt(MSPS))
        else:
            d[f"{side}_msp_name"] = draw(opt(NAME))
            d[f"{side}_msp_id"] = draw(opt(LPAR_ID))
            d[f"{side}_msp_ipaddr"] = draw(opt(IPV4))
    d["concurr_migration_perf_level"] = draw(opt(st.integers(1, 5)))
    d["inactive_prof_policy"] = draw(opt(st.sampled_from(["prof", "config"])))
    d["num_active_migrations_configured"] = draw(opt(st.integers(0, 10**6)))
    order = draw(st.permutations(list(d)))
    return {k: d[k] for k in order if d[k] is not None}


@ROUND
@given(attribute_sets())
def test_round_trip_through_hmc_text(d):
    text = format_attributes(d)
    got = parse_attributes(text)
    assert got.given() == {k: d[k] for k in A.ATTRIBUTES if k in d}
    assert list(got.raw) == list(d)
    assert format_attributes(got) == format_attributes(got.given())


@ROUND
@given(attribute_sets(), st.data())
def test_stray_quote_fails_cleanly_or_parses_consistently(d, data):
    text = format_attributes(d)
    pos = data.draw(st.integers(0, len(text)))
    broken = text[:pos] + '"' + text[pos:]
    try:
        got = parse_attributes(broken)
    except UsageError as e:
        check_error(e)
        return
    assert parse_attributes(format_attributes(got)).given() == got.given()


# -- several partitions in one command: each gets its own entries ---------------------------

def test_multiple_forms_become_each_partitions_single_attributes():
    a = parse_attributes('"multiple_dest_lpar_ids=lp1//7,/9/8",'
                         '"multiple_profile_names=lp1//migprof,/9/other",'
                         '"multiple_virtual_scsi_mappings=lp1//12/vios3/,lp2//12//2/20",'
                         '"dest_msps=vios2/1/,vios4/3/"', allowed=A.MIGRATE_ATTRIBUTES)
    one, prof = a.for_partition("lp1", 5, 0)
    assert (one.dest_lpar_id, prof) == (7, "migprof")
    assert [m.vios_name for m in one.virtual_scsi_mappings] == ["vios3"]
    assert one.dest_msp_name == "vios2"
    two, prof = a.for_partition("lp2", 9, 1)
    assert (two.dest_lpar_id, prof) == (8, "other")      # matched by ID
    assert [m.vios_id for m in two.virtual_scsi_mappings] == [2]
    assert (two.dest_msp_name, two.dest_msp_id) == ("vios4", 3)  # MSPs dealt out in turn
    three, prof = a.for_partition("lp3", 10, 2)
    assert (three.dest_lpar_id, prof, three.dest_msp_name) == (None, None, "vios2")
