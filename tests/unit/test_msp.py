"""The MSP forwarding rules (rendering and counter parsing); the real path runs in the lab tests."""

from __future__ import annotations

import pytest

from lpmlab.errors import FabricError
from lpmlab.fabric.msp import Hop, carried_bytes, ruleset, table_name


def hop() -> Hop:
    return Hop("abc123", "eth0", ("198.18.0.21", 49152), "mover0", "198.18.1.21",
               ("198.18.1.22", 49152))


def test_ruleset_forwards_the_port_to_the_next_hop_and_rewrites_the_source():
    text = ruleset(hop())
    assert "table ip lpm_mig_abc123" in text
    assert ('iifname "eth0" ip daddr 198.18.0.21 tcp dport 49152 counter dnat to '
            '198.18.1.22:49152') in text
    assert ('oifname "mover0" ip daddr 198.18.1.22 tcp dport 49152 counter snat to '
            '198.18.1.21') in text


@pytest.mark.parametrize("bad", ["", "a-b", "x;y", "a" * 41, "id with space"])
def test_table_name_refuses_ids_that_are_not_nft_names(bad):
    with pytest.raises(FabricError):
        table_name(bad)


def test_carried_bytes_reads_stream_and_return_counters():
    listing = {"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"rule": {"chain": "pre", "expr": [{"counter": {"packets": 1, "bytes": 60}}]}},
        {"rule": {"chain": "carried", "comment": "stream",
                  "expr": [{"match": {}}, {"counter": {"packets": 10, "bytes": 123456}}]}},
        {"rule": {"chain": "carried", "comment": "return",
                  "expr": [{"counter": {"packets": 4, "bytes": 208}}]}},
    ]}
    assert carried_bytes(listing) == {"stream": 123456, "return": 208}
    assert carried_bytes({"nftables": []}) == {"stream": 0, "return": 0}
