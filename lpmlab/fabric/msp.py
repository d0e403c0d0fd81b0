"""The mover service partition's data path: in-kernel forwarding in the VIOS namespace.

For each migration the controller installs, in both MSPs' namespaces, an nftables table that
takes the stream arriving at the MSP and sends it on: the source MSP forwards what its frame
sends to its lab address over the mover network to the destination MSP, which forwards it to
the destination frame. Each hop rewrites source and destination (DNAT + SNAT), so replies
return the same way and the stream really crosses source MSP -> mover network -> destination
MSP: choosing an MSP, losing one or limiting its mover link has a real effect.

In-kernel forwarding rather than a user-space relay: on two cores a relay's two extra TCP
endpoints cost 25-50 % of a stream's throughput, forwarding 0-20 %. Counters in the table
give the bytes each MSP carried; totals survive in the VIOS folder.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmlab.errors import FabricError
from lpmlab.fabric import netns

TABLE_PREFIX = "lpm_mig_"
LAB_IFACE = "eth0"
MOVER_IFACE = "mover0"


@dataclass(frozen=True)
class Hop:
    """One MSP's part of a migration stream: ``in_iface``:``listen`` -> ``out_iface`` -> ``to``."""

    fid: str
    in_iface: str
    listen: tuple[str, int]
    out_iface: str
    snat: str
    to: tuple[str, int]


def table_name(fid: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]{1,40}", fid):
        raise FabricError(f"invalid migration id {fid!r} for an MSP forward")
    return TABLE_PREFIX + fid


def ruleset(hop: Hop) -> str:
    """The nftables table for one hop (counters on both directions of the stream)."""
    t = table_name(hop.fid)
    (laddr, lport), (taddr, tport) = hop.listen, hop.to
    return f"""table ip {t} {{
  chain pre {{
    type nat hook prerouting priority dstnat;
    iifname "{hop.in_iface}" ip daddr {laddr} tcp dport {lport} counter dnat to {taddr}:{tport}
  }}
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "{hop.out_iface}" ip daddr {taddr} tcp dport {tport} counter snat to {hop.snat}
  }}
  chain carried {{
    type filter hook forward priority 0;
    ip daddr {taddr} tcp dport {tport} counter comment "stream"
    ip saddr {taddr} tcp sport {tport} counter comment "return"
  }}
}}
"""


def carried_bytes(listing: dict[str, Any]) -> dict[str, int]:
    """Bytes counted by the ``carried`` chain in ``nft -j list table`` output."""
    out = {"stream": 0, "return": 0}
    for item in listing.get("nftables", []):
        rule = item.get("rule")
        if not rule or rule.get("chain") != "carried":
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr and rule.get("comment") in out:
                out[rule["comment"]] += int(expr["counter"].get("bytes", 0))
    return out


class MoverService:
    """The MSP of one VIOS: its forwarding state and the bytes it carried."""

    def __init__(self, name: str, ns: str, state_dir: Path) -> None:
        self.name = name
        self.ns = ns
        self.totals_file = state_dir / "msp_bytes.json"

    def _nft(self, *args: str, stdin: str | None = None) -> str:
        try:
            cp = subprocess.run(["ip", "netns", "exec", self.ns, "nft", *args], input=stdin,
                                capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired as exc:
            raise FabricError(f"MSP {self.name}: nft {' '.join(args)} timed out") from exc
        if cp.returncode != 0:
            raise FabricError(f"MSP {self.name}: nft {' '.join(args)} failed",
                              evidence=cp.stderr.strip(),
                              fix="check the VIOS with 'lpmlab lab status'")
        return cp.stdout

    def check(self) -> None:
        """Raise FabricError unless the MSP can carry a stream (namespace, mover link, routing)."""
        if not netns.exists(self.ns):
            raise FabricError(f"MSP {self.name}: its namespace {self.ns} is gone",
                              fix="recreate the lab's VIOS with 'lpmlab lab up'")
        link = netns.run_in(self.ns, ["ip", "-o", "link", "show", MOVER_IFACE], check=False)
        if link.returncode != 0 or "state DOWN" in link.stdout or ",UP" not in link.stdout:
            raise FabricError(f"MSP {self.name}: mover link {MOVER_IFACE} is down",
                              evidence=(link.stdout or link.stderr).strip(),
                              fix=f"ip -n {self.ns} link set {MOVER_IFACE} up")
        fwd = Path("/proc/sys/net/ipv4/ip_forward")
        value = netns.run_in(self.ns, ["cat", str(fwd)], check=False).stdout.strip()
        if value != "1":
            raise FabricError(f"MSP {self.name}: forwarding is off in {self.ns}",
                              fix="run 'lpmlab lab up' to configure the VIOS again")

    def forward(self, hop: Hop) -> None:
        """Install the hop (idempotent: an existing table of that id is replaced)."""
        t = table_name(hop.fid)
        self._nft("-f", "-", stdin=f"table ip {t}\ndelete table ip {t}\n{ruleset(hop)}")

    def counters(self, fid: str) -> dict[str, int]:
        return carried_bytes(json.loads(self._nft("-j", "list", "table", "ip", table_name(fid))))

    def close(self, fid: str) -> dict[str, int]:
        """Remove the hop; return and add to the totals the bytes it carried."""
        try:
            carried = self.counters(fid)
        except FabricError:
            return {"stream": 0, "return": 0}
        self._nft("delete", "table", "ip", table_name(fid))
        totals = self.totals()
        totals["bytes"] = totals.get("bytes", 0) + carried["stream"] + carried["return"]
        totals["streams"] = totals.get("streams", 0) + 1
        self.totals_file.parent.mkdir(parents=True, exist_ok=True)
        self.totals_file.write_text(json.dumps(totals))
        return carried

    def totals(self) -> dict[str, int]:
        try:
            return json.loads(self.totals_file.read_text())
        except (OSError, ValueError):
            return {}

    def limit_bandwidth(self, mbit: int | None) -> None:
        """Cap (tbf) or uncap the MSP's mover link; ``None`` removes the cap."""
        base = ["tc", "qdisc"]
        if mbit is None:
            netns.run_in(self.ns, [*base, "del", "dev", MOVER_IFACE, "root"], check=False)
            return
        # burst must hold at least one timer tick of data at this rate
        burst = max(64 * 1024, mbit * 1_000_000 // 8 // 250)
        netns.run_in(self.ns, [*base, "replace", "dev", MOVER_IFACE, "root", "tbf", "rate",
                               f"{mbit}mbit", "burst", str(burst), "latency", "100ms"])

    def open_forwards(self) -> list[str]:
        out = self._nft("list", "tables")
        return [line.split()[-1][len(TABLE_PREFIX):] for line in out.splitlines()
                if line.split()[-1].startswith(TABLE_PREFIX)]
