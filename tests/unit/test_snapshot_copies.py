"""A partition defined on two frames (migrating, or a leftover) stands where it runs; the
other copy still counts on its frame."""

from __future__ import annotations

import dataclasses

from lpmlab import topology
from lpmlab.hmc import validation as V
from lpmlab.hmc.snapshot import stand_ins


def copies(*frames_states: tuple[str, str]) -> list[V.PartitionState]:
    lpar1 = V.snapshot_from_topology(topology.load()).partitions["lpar1"]
    return [dataclasses.replace(lpar1, frame=f, state=s) for f, s in frames_states]


def test_the_running_copy_stands_for_the_partition_whatever_the_listing_order():
    for listing in ((("sys1", "running"), ("sys2", "paused")),
                    (("sys2", "paused"), ("sys1", "running"))):
        assert stand_ins(copies(*listing))["lpar1"].frame == "sys1"  # migrating: source
    assert stand_ins(copies(("sys2", "shutoff"), ("sys1", "running")))["lpar1"].frame == "sys1"
    assert stand_ins(copies(("sys1", "shutoff"), ("sys2", "paused")))["lpar1"].frame == "sys2"
    # a tie keeps the first listed
    assert stand_ins(copies(("sys1", "shutoff"), ("sys2", "shutoff")))["lpar1"].frame == "sys1"


def test_validation_sees_a_migrating_partition_as_already_migrating():
    snap = V.snapshot_from_topology(topology.load())
    running = dataclasses.replace(snap.partitions["lpar1"], migrating=True)
    snap = dataclasses.replace(snap, partitions={**snap.partitions, "lpar1": running})
    report = V.validate(snap, V.MigrationRequestView("lpar1", "sys1", "sys2"))
    assert "HSCLL531" in {f.code for f in report.errors}
