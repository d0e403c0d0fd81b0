"""HMC record output: attr=value lines, -F value lists, --header, --filter."""

import csv

import pytest

from lpmlab.errors import UsageError
from lpmlab.hmc import records

LPARS = [
    {"name": "lpar1", "lpar_id": 2, "state": "Running"},
    {"name": "lpar2", "lpar_id": 3, "state": "Not Activated"},
]


def fields(line, delimiter=","):
    """Parse one output line back the way a script would (csv module)."""
    return next(csv.reader([line], delimiter=delimiter))


# -- attr=value records ---------------------------------------------------------------------

def test_plain_record_is_attr_value_pairs_in_order():
    line = records.format_record({"name": "lpar1", "lpar_id": 2, "state": "Running"})
    assert fields(line) == ["name=lpar1", "lpar_id=2", "state=Running"]
    assert '"' not in line


def test_value_with_commas_is_quoted_and_parses_back():
    rec = {"name": "lpar1", "virtual_scsi_adapters": "12/vios1/1,13/vios2/1", "state": "Running"}
    line = records.format_record(rec)
    assert fields(line) == ["name=lpar1", "virtual_scsi_adapters=12/vios1/1,13/vios2/1",
                            "state=Running"]
    assert '"virtual_scsi_adapters=12/vios1/1,13/vios2/1"' in line


def test_value_with_quotes_has_them_doubled():
    rec = {"name": "lpar1", "desc": 'say "hi", then go'}
    line = records.format_record(rec)
    assert fields(line) == ["name=lpar1", 'desc=say "hi", then go']
    assert '""hi""' in line


def test_lists_booleans_and_none_print_the_hmc_way():
    line = records.format_record({"ids": [1, 2], "msp": True, "time_ref": False, "x": None})
    assert fields(line) == ["ids=1,2", "msp=1", "time_ref=0", "x=null"]


def test_render_puts_one_record_per_line_without_trailing_newline():
    out = records.render(LPARS)
    assert out.split("\n") == [records.format_record(r) for r in LPARS]
    assert not out.endswith("\n")
    assert records.render([]) == ""


# -- -F and --header --------------------------------------------------------------------------

def test_fields_with_comma_print_only_values_in_order():
    assert records.render(LPARS, "state,name") == "Running,lpar1\nNot Activated,lpar2"


def test_fields_with_colon_use_the_colon():
    assert records.render(LPARS, "name:state") == "lpar1:Running\nlpar2:Not Activated"


def test_header_prints_the_names_first_with_the_same_delimiter():
    out = records.render(LPARS, "name:lpar_id", header=True)
    assert out.split("\n") == ["name:lpar_id", "lpar1:2", "lpar2:3"]


def test_header_with_no_records_prints_only_the_header():
    assert records.render([], "name,state", header=True) == "name,state"


def test_unknown_attribute_prints_an_empty_value():
    assert records.render(LPARS[:1], "name,nosuch,state") == "lpar1,,Running"


def test_value_containing_the_delimiter_is_quoted():
    rec = [{"name": "a:b", "state": "Running", "list": "x,y"}]
    out = records.render(rec, "name:state:list")
    assert fields(out, ":") == ["a:b", "Running", "x,y"]
    assert out.startswith('"a:b":')


def test_mixed_delimiters_are_rejected():
    with pytest.raises(UsageError) as exc:
        records.render(LPARS, "name,state:lpar_id")
    assert exc.value.exit_code == 2
    assert exc.value.fix


@pytest.mark.parametrize("spec", ["", ",name", "name,", ":"])
def test_malformed_field_lists_are_rejected(spec):
    with pytest.raises(UsageError):
        records.render(LPARS, spec)


def test_header_without_fields_is_rejected():
    with pytest.raises(UsageError) as exc:
        records.render(LPARS, None, header=True)
    assert "-F" in exc.value.message


@pytest.mark.parametrize("spec, sep", [("name, state", ", "), ("name::state", "::")])
def test_multi_character_delimiter_is_output_or_usage_error(spec, sep):
    try:
        out = records.render(LPARS[:1], spec)
    except UsageError:
        return
    assert out == f"lpar1{sep}Running"


# -- --filter ---------------------------------------------------------------------------------

ALLOWED = ["lpar_names", "lpar_ids"]


def test_filter_single_value():
    assert records.parse_filter("lpar_names=lpar1", ALLOWED) == {"lpar_names": ["lpar1"]}


def test_filter_unquoted_list_continues_the_previous_name():
    assert records.parse_filter("lpar_names=a,b", ALLOWED) == {"lpar_names": ["a", "b"]}


def test_filter_two_filters():
    flt = records.parse_filter("lpar_names=a,lpar_ids=3", ALLOWED)
    assert flt == {"lpar_names": ["a"], "lpar_ids": ["3"]}


def test_filter_quoted_list_gives_each_name():
    assert records.parse_filter('"lpar_names=a,b"', ALLOWED) == {"lpar_names": ["a", "b"]}


def test_filter_quoted_list_then_another_filter():
    flt = records.parse_filter('"lpar_names=a,b",lpar_ids=3', ALLOWED)
    assert flt == {"lpar_names": ["a", "b"], "lpar_ids": ["3"]}


def test_unknown_filter_is_rejected_with_the_valid_ones():
    with pytest.raises(UsageError) as exc:
        records.parse_filter("dest_sys_names=sys2", ALLOWED)
    assert "dest_sys_names" in exc.value.message
    assert "lpar_names" in exc.value.fix and "lpar_ids" in exc.value.fix


@pytest.mark.parametrize("text", ["lpar1", "lpar_names=a,,b"])
def test_filter_without_a_name_is_rejected(text):
    with pytest.raises(UsageError):
        records.parse_filter(text, ALLOWED)
