"""Topology parsing: the built-in lab parses, and every bad file fails naming the field."""

import copy
import ipaddress

import pytest
import yaml

from lpmlab import topology
from lpmlab.errors import TopologyError


@pytest.fixture
def base():
    """The built-in default topology as plain data, to mutate one field at a time."""
    return yaml.safe_load(topology.default_topology_text())


def parse(data):
    return topology.parse(yaml.safe_dump(data), source="test.yaml")


def expect_error(data, field):
    with pytest.raises(TopologyError) as exc:
        parse(data)
    err = exc.value
    assert f"test.yaml: {field}: " in err.message
    assert err.fix
    assert err.exit_code == 3
    return err


# -- the default lab ------------------------------------------------------------------------

def test_default_topology_has_two_frames_with_an_msp_each():
    t = topology.load()
    assert [f.name for f in t.frames] == ["sys1", "sys2"]
    assert t.source == "<built-in default>"
    assert t.hmc_address == ipaddress.IPv4Address("198.18.0.1")
    for f in t.frames:
        assert f.address in t.lab.subnet
        assert f.lmb_size_mb == 256
        assert f.mobility_capable
    msps = {v.name: v for v in t.vios if v.msp}
    assert set(msps) == {"vios1", "vios2"}
    assert msps["vios1"].frame == "sys1" and msps["vios2"].frame == "sys2"
    for v in msps.values():
        assert v.mover_address is not None
        assert v.mover_address in t.mover.subnet
    assert not t.lab.subnet.overlaps(t.mover.subnet)


def test_default_topology_places_lpar1_on_sys1_with_a_disk_on_vios1():
    t = topology.load()
    lpar = t.partition("lpar1")
    assert lpar.frame == "sys1"
    assert lpar.disk is not None and lpar.disk.vios == "vios1"
    assert lpar.memory_mb % t.frame("sys1").lmb_size_mb == 0
    assert t.partitions_on("sys1") == [lpar]
    assert t.partitions_on("sys2") == []
    assert [v.name for v in t.vios_on("sys1")] == ["vios1"]
    assert t.vios_named("vios2").frame == "sys2"


def test_lookups_of_unknown_names_raise_keyerror():
    t = topology.load()
    for lookup in (t.frame, t.partition, t.vios_named):
        with pytest.raises(KeyError):
            lookup("nosuch")


def test_load_reads_a_file_and_records_its_path(tmp_path, base):
    base["partitions"][0]["memory_mb"] = 768
    p = tmp_path / "lab.yaml"
    p.write_text(yaml.safe_dump(base))
    t = topology.load(p)
    assert t.source == str(p)
    assert t.partition("lpar1").memory_mb == 768


def test_load_of_a_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError) as exc:
        topology.load(missing)
    assert str(missing) in exc.value.message
    assert exc.value.fix


def test_defaults_fill_in_optional_fields(base):
    p = base["partitions"][0]
    for key in ("lpar_id", "memory_mb", "procs", "proc_compat_mode"):
        del p[key]
    t = parse(base)
    lpar = t.partition("lpar1")
    assert (lpar.lpar_id, lpar.memory_mb, lpar.procs, lpar.proc_compat_mode) == \
        (2, 512, 1, "default")
    assert lpar.mac.startswith("52:54:00:")


def test_same_lpar_id_on_different_frames_is_fine(base):
    # vios1 and vios2 both have lpar_id 1 in the default, on different frames
    t = parse(base)
    assert {v.lpar_id for v in t.vios} == {1}


# -- syntax ---------------------------------------------------------------------------------

def test_bad_yaml_is_rejected():
    with pytest.raises(TopologyError) as exc:
        topology.parse("frames: [\n  - name: sys1\n", source="test.yaml")
    assert "not valid YAML" in exc.value.message
    assert exc.value.fix


def test_a_list_instead_of_a_mapping_is_rejected():
    with pytest.raises(TopologyError) as exc:
        topology.parse("- a\n- b\n", source="test.yaml")
    assert "mapping" in exc.value.message
    assert exc.value.fix


def test_frames_as_a_mapping_is_rejected(base):
    base["frames"] = {"sys1": {}}
    expect_error(base, "frames")


def test_no_frames_is_rejected(base):
    base["frames"] = []
    base["vios"] = []
    base["partitions"] = []
    expect_error(base, "frames")


@pytest.mark.parametrize("bad", ["Sys1", "1sys", "sys 1", "x" * 40, 7])
def test_invalid_names_are_rejected(base, bad):
    base["frames"][0]["name"] = bad
    expect_error(base, "frames[0].name")


def test_non_integer_memory_is_rejected(base):
    base["partitions"][0]["memory_mb"] = "512M"
    expect_error(base, "partitions[0].memory_mb")


def test_out_of_range_procs_is_rejected(base):
    base["partitions"][0]["procs"] = 64
    err = expect_error(base, "partitions[0].procs")
    assert "1" in err.fix and "8" in err.fix


def test_missing_required_field_is_named(base):
    del base["partitions"][0]["address"]
    err = expect_error(base, "partitions[0]")
    assert "'address'" in err.message


# -- addresses and networks -----------------------------------------------------------------

def test_address_outside_the_lab_range_is_rejected(base):
    base["frames"][1]["address"] = "10.0.0.12"
    err = expect_error(base, "frames[1].address")
    assert "198.18.0.0/15" in err.message


def test_address_that_is_not_an_address_is_rejected(base):
    base["partitions"][0]["address"] = "lpar1.example"
    expect_error(base, "partitions[0].address")


def test_address_outside_its_subnet_is_rejected(base):
    # in the lab range, but not on the lab network
    base["partitions"][0]["address"] = "198.18.1.101"
    err = expect_error(base, "partitions[0].address")
    assert "198.18.0.0/24" in err.message


def test_mover_address_on_the_lab_network_is_rejected(base):
    base["vios"][0]["mover_address"] = "198.18.0.121"
    err = expect_error(base, "vios[0].mover_address")
    assert "mover" in err.message


@pytest.mark.parametrize("addr", ["198.18.0.0", "198.18.0.255"])
def test_network_and_broadcast_addresses_are_rejected(base, addr):
    base["frames"][0]["address"] = addr
    expect_error(base, "frames[0].address")


def test_msp_without_mover_address_is_rejected(base):
    del base["vios"][1]["mover_address"]
    err = expect_error(base, "vios[1]")
    assert "mover_address" in err.message


def test_vios_without_msp_needs_no_mover_address(base):
    base["vios"][1]["msp"] = False
    del base["vios"][1]["mover_address"]
    v = parse(base).vios_named("vios2")
    assert not v.msp and v.mover_address is None


def test_subnet_outside_the_lab_range_is_rejected(base):
    base["networks"]["mover"]["subnet"] = "192.168.1.0/24"
    expect_error(base, "networks.mover.subnet")


def test_malformed_subnet_is_rejected(base):
    base["networks"]["lab"]["subnet"] = "198.18.0.1/24"  # host bits set
    expect_error(base, "networks.lab.subnet")


def test_overlapping_subnets_are_rejected(base):
    base["networks"]["mover"]["subnet"] = "198.18.0.0/23"
    err = expect_error(base, "networks")
    assert "overlap" in err.message


def test_missing_mover_network_is_rejected(base):
    del base["networks"]["mover"]
    expect_error(base, "networks.mover")


# -- cross checks ---------------------------------------------------------------------------

def test_duplicate_names_are_rejected(base):
    base["partitions"][0]["name"] = "vios1"
    err = expect_error(base, "partitions[0].name")
    assert "vios[0]" in err.message


def test_duplicate_frame_names_are_rejected(base):
    base["frames"][1]["name"] = "sys1"
    err = expect_error(base, "frames[1].name")
    assert "frames[0]" in err.message


def test_duplicate_addresses_are_rejected(base):
    base["partitions"][0]["address"] = base["frames"][0]["address"]
    err = expect_error(base, "partitions[0]")
    assert "198.18.0.11" in err.message and "frames[0]" in err.message


def test_address_equal_to_the_hmc_is_rejected(base):
    base["frames"][1]["address"] = base["networks"]["lab"]["hmc_address"]
    err = expect_error(base, "frames[1]")
    assert "hmc_address" in err.message


def test_duplicate_mover_addresses_are_rejected(base):
    base["vios"][1]["mover_address"] = base["vios"][0]["mover_address"]
    err = expect_error(base, "vios[1]")
    assert "198.18.1.21" in err.message


def test_duplicate_lpar_id_on_a_frame_is_rejected(base):
    base["partitions"][0]["lpar_id"] = 1  # vios1 is lpar_id 1 on sys1
    err = expect_error(base, "partitions[0].lpar_id")
    assert "sys1" in err.message and "vios1" in err.message


def test_unknown_frame_of_a_vios_is_rejected(base):
    base["vios"][1]["frame"] = "sys9"
    err = expect_error(base, "vios[1].frame")
    assert "sys9" in err.message and "sys1" in err.fix


def test_unknown_frame_of_a_partition_is_rejected(base):
    base["partitions"][0]["frame"] = "sys9"
    err = expect_error(base, "partitions[0].frame")
    assert "sys9" in err.message


def test_unknown_disk_vios_is_rejected(base):
    base["partitions"][0]["disk"]["vios"] = "vios9"
    err = expect_error(base, "partitions[0].disk.vios")
    assert "vios9" in err.message and "vios1" in err.fix


def test_memory_not_a_multiple_of_the_lmb_is_rejected(base):
    base["partitions"][0]["memory_mb"] = 640
    err = expect_error(base, "partitions[0].memory_mb")
    assert "256" in err.message and "sys1" in err.message


def test_the_lmb_size_is_the_frames_own(base):
    base["frames"][0]["lmb_size_mb"] = 1024
    err = expect_error(base, "partitions[0].memory_mb")
    assert "1024" in err.message
    # the same partition on the other frame (LMB 256) is fine
    ok = copy.deepcopy(base)
    ok["partitions"][0]["frame"] = "sys2"
    assert parse(ok).partition("lpar1").frame == "sys2"


def test_bad_partition_proc_compat_mode_is_rejected(base):
    base["partitions"][0]["proc_compat_mode"] = "POWER7"
    err = expect_error(base, "partitions[0].proc_compat_mode")
    assert "POWER9" in err.fix


def test_bad_frame_proc_compat_modes_are_rejected(base):
    base["frames"][1]["proc_compat_modes"] = ["default", "POWER7"]
    expect_error(base, "frames[1].proc_compat_modes")


@pytest.mark.parametrize("ports", [[50000, 49000], [80, 90], [49152, 70000], [49152],
                                   ["a", "b"], 49152])
def test_bad_port_ranges_are_rejected(base, ports):
    base["frames"][1]["migration_ports"] = ports
    expect_error(base, "frames[1].migration_ports")


def test_port_range_is_kept(base):
    base["frames"][1]["migration_ports"] = [50000, 50010]
    assert parse(base).frame("sys2").migration_ports == (50000, 50010)
