"""The REST API's jobs (``PUT .../do/NAME``), each turned into the HMC command that does the
same work: a job is that command run through the HMC's command server, so a REST migration
and ``migrlpar`` are one implementation, with the same checks, limits, records and codes.

| job | on | command |
|---|---|---|
| MigrateValidate | LogicalPartition | ``migrlpar -o v`` |
| Migrate | LogicalPartition | ``migrlpar -o m`` |
| MigrateRecover | LogicalPartition | ``migrlpar -o r`` (``Force=true``: ``--force``) |
| MigrateAbort | LogicalPartition | ``migrlpar -o s`` |
| PowerOn | LogicalPartition | ``chsysstate -o on`` |
| PowerOff | LogicalPartition | ``chsysstate -o shutdown|osshutdown [--immed] [--restart]`` |

The parameter names are the ones pypowervm's ``tasks.migration`` and ``tasks.power`` send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lpmlab import codes
from lpmlab.errors import LpmlabError
from lpmlab.rest.model import PartitionView, Survey


@dataclass(frozen=True)
class Command:
    """What a job runs: the command line, and the partition and system it acts on."""

    operation: str
    argv: list[str]
    partition: str
    system: str


@dataclass(frozen=True)
class JobKind:
    group: str
    parameters: tuple[str, ...]            # every name the job takes
    build: Callable[[PartitionView, Mapping[str, str], Survey], list[str]]
    # a cancel stops it with migrlpar -o s (a migration), else interrupts its command
    stopped_by_migrlpar: bool = False
    # (lpmlab's code, words of its message, the HMC's code): where clients test the HMC's
    # code, the job's result starts with it (pypowervm takes HSCL3681 "already running"
    # and HSCL1558 "already off" as done)
    hmc_codes: tuple[tuple[str, str, str], ...] = ()


def hmc_code(operation: str, code: str, message: str) -> str:
    """The HMC's own code for what lpmlab's ``code`` said, or ""."""
    k = JOBS.get(operation)
    return next((hmc for ours, words, hmc in (k.hmc_codes if k else ())
                 if ours == code and words in message), "")


def _bad(job: str, detail: str, fix: str) -> LpmlabError:
    return codes.error("HSCLR407", obj=job, detail=detail, fix=fix)


def _flag(job: str, params: Mapping[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise _bad(job, f"{name}={value!r} is not true or false", f"send {name}=true or false")
    return value.lower() == "true"


def _addresses(job: str, name: str, value: str) -> list[str]:
    out = []
    for item in value.split(","):
        try:
            out.append(str(ipaddress.IPv4Address(item.strip())))
        except ValueError:
            raise _bad(job, f"{name}={value!r}: {item.strip()!r} is not an IPv4 address",
                       f"give {name} the MSP's mover address(es), comma separated "
                       "(lslparmigr -r msp)") from None
    return out


def _migration(op: str, job: str) -> Callable[[PartitionView, Mapping[str, str], Survey],
                                              list[str]]:
    def build(p: PartitionView, params: Mapping[str, str], survey: Survey) -> list[str]:
        target = params.get("TargetManagedSystemName")
        if not target:
            raise _bad(job, "TargetManagedSystemName is missing",
                       "name the destination managed system (its SystemName)")
        argv = ["migrlpar", "-o", op, "-m", p.system.name, "-t", target, "-p", p.name,
                "--json"]
        remote = params.get("TargetRemoteHMCIPAddress")
        if remote:
            argv += ["--ip", remote]
            if params.get("TargetRemoteHMCUserID"):
                argv += ["-u", params["TargetRemoteHMCUserID"]]
        elif params.get("TargetRemoteHMCUserID"):
            raise _bad(job, "TargetRemoteHMCUserID without TargetRemoteHMCIPAddress",
                       "send both, or neither")
        attrs = []
        for name, attr in (("SourceMSPIPaddr", "source_msp_ipaddr"),
                           ("DestMSPIPaddr", "dest_msp_ipaddr")):
            if params.get(name):
                addrs = _addresses(job, name, params[name])
                if len(addrs) > 1:
                    # several MSPs: the multiple-MSP form with the addresses only
                    side = "source_msps" if attr.startswith("source") else "dest_msps"
                    attrs.append(f'"{side}={",".join(f"//{a}" for a in addrs)}"')
                else:
                    attrs.append(f"{attr}={addrs[0]}")
        for name, attr in (("VirtualSCSIMappings", "virtual_scsi_mappings"),
                           ("VirtualFCMappings", "virtual_fc_mappings")):
            if params.get(name):
                attrs.append(f'"{attr}={params[name]}"')
        if params.get("SharedProcPoolID"):
            attrs.append(f"shared_proc_pool_id={params['SharedProcPoolID']}")
        if params.get("DestLPARID"):
            attrs.append(f"dest_lpar_id={params['DestLPARID']}")
        if attrs:
            argv += ["-i", ",".join(attrs)]
        # OVSOverride relaxes an Open vSwitch check: the lab has no OVS, nothing to relax
        if params.get("VLANBridgeOverride"):
            argv += ["--vlanbridge", params["VLANBridgeOverride"]]
        if params.get("VlanMappings"):
            raise _bad(job, "VlanMappings cannot be honoured: the lab's partitions have one "
                       "virtual Ethernet adapter on PVID 1, bridged on every managed system",
                       "leave VlanMappings out")
        if _flag(job, params, "Affinity"):
            raise _bad(job, "Affinity=true asks for an affinity score check, which the lab "
                       "does not model", "leave Affinity out")
        return argv

    return build


def _recover(p: PartitionView, params: Mapping[str, str], survey: Survey) -> list[str]:
    argv = ["migrlpar", "-o", "r", "-m", p.system.name, "-p", p.name, "--json"]
    return argv + (["--force"] if _flag("MigrateRecover", params, "Force") else [])


def stop_argv(system: str, partition: str) -> list[str]:
    """``migrlpar -o s``: what MigrateAbort runs, and what a cancelled Migrate job runs."""
    return ["migrlpar", "-o", "s", "-m", system, "-p", partition, "--json"]


def _abort(p: PartitionView, params: Mapping[str, str], survey: Survey) -> list[str]:
    return stop_argv(p.system.name, p.name)


def _power_on(p: PartitionView, params: Mapping[str, str], survey: Survey) -> list[str]:
    return ["chsysstate", "-m", p.system.name, "-r", "lpar", "-o", "on", "-n", p.name,
            "--json"]


def _power_off(p: PartitionView, params: Mapping[str, str], survey: Survey) -> list[str]:
    operation = params.get("operation", "shutdown")
    if operation not in ("shutdown", "osshutdown", "dumprestart"):
        raise _bad("PowerOff", f"operation={operation!r} is not a power-off operation",
                   "use shutdown, osshutdown or dumprestart")
    if operation == "dumprestart":
        raise _bad("PowerOff", "operation=dumprestart: the lab's partitions take no dump",
                   "use shutdown or osshutdown")
    restart = _flag("PowerOff", params, "restart")
    argv = ["chsysstate", "-m", p.system.name, "-r", "lpar", "-o", operation, "-n", p.name,
            "--json"]
    # an OS shutdown is always at once here (the partition's init takes no delay)
    if _flag("PowerOff", params, "immediate") and operation == "shutdown":
        argv.append("--immed")
    if restart:
        argv.append("--restart")
    return argv


MIGRATION_PARAMS = ("TargetManagedSystemName", "TargetRemoteHMCIPAddress",
                    "TargetRemoteHMCUserID", "DestMSPIPaddr", "SourceMSPIPaddr",
                    "SharedProcPoolID", "OVSOverride", "VLANBridgeOverride",
                    "VirtualFCMappings", "VirtualSCSIMappings", "VlanMappings", "Affinity",
                    "DestLPARID")

JOBS: dict[str, JobKind] = {
    "MigrateValidate": JobKind("LogicalPartition", MIGRATION_PARAMS,
                               _migration("v", "MigrateValidate")),
    "Migrate": JobKind("LogicalPartition", MIGRATION_PARAMS, _migration("m", "Migrate"),
                       stopped_by_migrlpar=True),
    "MigrateRecover": JobKind("LogicalPartition", ("Force",), _recover),
    "MigrateAbort": JobKind("LogicalPartition", (), _abort),
    "PowerOn": JobKind("LogicalPartition", (), _power_on,
                       hmc_codes=(("HSCLL441", "is Running;", "HSCL3681"),)),
    "PowerOff": JobKind("LogicalPartition", ("operation", "immediate", "restart"),
                        _power_off, hmc_codes=(("HSCLL444", "already Not Activated",
                                                "HSCL1558"),)),
}


def jobs_of(group: str) -> list[str]:
    return [name for name, k in JOBS.items() if k.group == group]


def kind(group: str, operation: str) -> JobKind:
    """The job ``operation`` of an object of ``group``; HSCLR406 when it has none such."""
    k = JOBS.get(operation)
    if k is None or k.group != group:
        raise codes.error("HSCLR406", obj=operation, kind=group,
                          allowed=", ".join(jobs_of(group)) or "none")
    return k


def command(group: str, operation: str, p: PartitionView, params: Mapping[str, str],
            survey: Survey) -> Command:
    """The command a job runs; HSCLR406/HSCLR407 for a job or parameter it cannot take
    (before anything runs)."""
    k = kind(group, operation)
    unknown = sorted(set(params) - set(k.parameters))
    if unknown:
        raise _bad(operation, f"it takes no parameter {', '.join(unknown)}",
                   f"its parameters are {', '.join(k.parameters) or 'none'}")
    empty = sorted(n for n, v in params.items() if v == "")
    if empty:
        raise _bad(operation, f"{', '.join(empty)} is empty", "give it a value or leave it out")
    return Command(operation, k.build(p, params, survey), p.name, p.system.name)
