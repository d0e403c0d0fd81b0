"""Partition profiles: topology parsing, their place in domain metadata, and the console's
escape sequence (pure parts; the lab tests drive them against real domains)."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest
import yaml

from lpmlab import topology
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter.console import EscapeFilter
from lpmlab.errors import TopologyError


def parse(data):
    return topology.parse(yaml.safe_dump(data), source="test.yaml")


@pytest.fixture
def base():
    return yaml.safe_load(topology.default_topology_text())


def test_without_profiles_a_partition_gets_one_from_its_memory_and_procs(base):
    p = parse(base).partitions[0]
    assert [x.name for x in p.profiles] == [topology.DEFAULT_PROFILE]
    prof = p.profiles[0]
    assert (prof.desired_mem, prof.desired_procs) == (p.memory_mb, p.procs)
    assert prof.min_procs == 1 and prof.max_procs == p.procs


def test_the_first_profile_sizes_the_partition(base):
    data = copy.deepcopy(base)
    data["partitions"][0]["profiles"] = [
        {"name": "big", "desired_mem": 768, "min_mem": 512, "max_mem": 1024,
         "desired_procs": 2, "max_procs": 4},
        {"name": "small", "desired_mem": 256}]
    p = parse(data).partitions[0]
    assert [x.name for x in p.profiles] == ["big", "small"]
    assert (p.memory_mb, p.procs) == (768, 2)
    assert p.profiles[1].desired_procs == 1  # the partition's procs when not given


@pytest.mark.parametrize("prof, field", [
    ({"name": "x", "desired_mem": 512, "max_mem": 256}, "desired_mem"),
    ({"name": "x", "desired_procs": 4, "max_procs": 2}, "desired_procs"),
    ({"name": "x", "desired_mem": 640}, "desired_mem"),          # not a multiple of the LMB
    ({"name": "x", "lpar_proc_compat_mode": "POWER5"}, "lpar_proc_compat_mode"),
])
def test_an_inconsistent_profile_names_its_field(base, prof, field):
    data = copy.deepcopy(base)
    data["partitions"][0]["profiles"] = [prof]
    with pytest.raises(TopologyError) as exc:
        parse(data)
    assert f"partitions[0].profiles[0].{field}" in exc.value.message
    assert exc.value.fix


def test_two_profiles_with_one_name_are_refused(base):
    data = copy.deepcopy(base)
    data["partitions"][0]["profiles"] = [{"name": "a"}, {"name": "a"}]
    with pytest.raises(TopologyError, match="defined twice"):
        parse(data)


def test_profile_attributes_round_trip():
    prof = topology.Profile("migprof", 512, 256, 1024, 2, 1, 4, "POWER9")
    assert topology.Profile.from_attrs(prof.as_attrs()) == prof


def test_profiles_ride_in_the_metadata_element():
    profs = (topology.Profile("a", 512, 512, 512, 1, 1, 1).as_attrs(),
             topology.Profile("b", 768, 512, 1024, 2, 1, 2).as_attrs())
    el = dx.metadata_element({"lpar_id": "3", "profile": "a"}, profs)
    assert dx.read_metadata_element(el) == {"lpar_id": "3", "profile": "a"}
    assert dx.read_profiles_element(el) == profs


def _domain(profiles=()):
    meta = ET.Element("metadata")
    part = ET.SubElement(meta, dx.METADATA_TAG, {"lpar_id": "2"})
    for p in profiles:
        ET.SubElement(part, dx.PROFILE_TAG, p)
    root = ET.Element("domain")
    root.append(meta)
    ET.SubElement(root, "memory", unit="KiB").text = str(512 * 1024)
    ET.SubElement(root, "currentMemory", unit="KiB").text = str(512 * 1024)
    ET.SubElement(root, "vcpu", placement="static").text = "1"
    return ET.tostring(root, encoding="unicode")


def test_set_profiles_replaces_them_and_keeps_the_attributes():
    xml = dx.set_profiles(_domain([{"name": "old"}]), ({"name": "new", "desired_mem": "512"},))
    assert dx.read_metadata(xml) == {"lpar_id": "2"}
    root = ET.fromstring(xml)
    names = [p.get("name") for p in root.iter(dx.PROFILE_TAG)]
    assert names == ["new"]


def test_set_resources_sizes_memory_and_processors():
    root = ET.fromstring(dx.set_resources(_domain(), 768, 4))
    assert root.find("memory").text == str(768 * 1024)
    assert root.find("currentMemory").text == str(768 * 1024)
    assert root.find("vcpu").text == "4"


@pytest.mark.parametrize("typed, sent, done", [
    (b"ls\r~.", b"ls\r", True),
    (b"~.", b"", True),
    (b"a~.", b"a~.", False),          # not at the start of a line
    (b"~x", b"~x", False),            # a tilde that is not the escape goes through
    (b"\n~~", b"\n~", False),          # "~~" sends one tilde, as in ssh
])
def test_escape_is_tilde_dot_at_line_start(typed, sent, done):
    f = EscapeFilter()
    out = b"".join(f.feed(bytes([b])) for b in typed)
    assert out == sent
    assert f.done is done


def test_profiles_in_both_spellings_are_read_and_replaced_once():
    # libvirt's setMetadata() namespaces the children; a hand-written domain may not
    xml = _domain([{"name": "a"}])
    root = ET.fromstring(xml)
    ET.SubElement(root.find(f"metadata/{dx.METADATA_TAG}"), "profile", {"name": "b"})
    xml = dx.set_profiles(ET.tostring(root, encoding="unicode"), ({"name": "c"},))
    meta = ET.fromstring(xml).find(f"metadata/{dx.METADATA_TAG}")
    assert [p.get("name") for p in meta] == ["c"]
    assert dx.read_profiles_element(ET.tostring(meta, encoding="unicode")) == ({"name": "c"},)
