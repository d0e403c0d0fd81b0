"""Validation codes (lpmlab's HSCL8011 and HSCLL5xx; the HMC's HSCL8012, HSCL3653, HSCLA319):
each with what its check looks at (``title``), its usual severity, its message and its fix.

lpmlab.hmc.validation's checks report them; HSCL8011/HSCL8012 and a few others are raised by
the commands too, with the same words. A check may report an error code as a warning (the
"if possible" level of migrlpar's tri-state overrides).
"""

from __future__ import annotations

from lpmlab import errors as E
from lpmlab.codes.entry import Code, Severity

FAMILY = "validation"
_LPAR_OS = "'lssyscfg -r lpar -m {sys} -F name,state,rmc_state'"
# The request itself is wrong (exit 2) or names nothing (exit 4); every other finding refuses
# the migration (exit 11).
_CLASS: dict[str, type[E.LpmlabError]] = {
    "HSCL8011": E.NotFoundError, "HSCL8012": E.NotFoundError,
    "HSCLL501": E.UsageError, "HSCLL504": E.UsageError,
}


def _c(code: str, severity: Severity, title: str, message: str, fix: str) -> Code:
    return Code(code, _CLASS.get(code, E.MigrationError), FAMILY, title, message, fix, severity)


CODES: tuple[Code, ...] = (
    # -- the request and the objects it names
    _c("HSCL8011", "error", "managed system exists",
       "The managed system {obj} was not found.",
       "list the managed systems with 'lssyscfg -r sys -F name'{hint}"),
    _c("HSCL8012", "error", "partition exists on the source",
       "The partition {obj} was not found on managed system {sys}.{where}",
       "list the partitions with 'lssyscfg -r lpar -m {sys} -F name,lpar_id'; "
       "name the managed system it is on with -m"),
    _c("HSCLL501", "error", "source differs from destination",
       "The source and destination managed systems are both {obj}.",
       "name another managed system with -t"),
    _c("HSCLL502", "error", "managed system reachable",
       "The managed system {obj} is in state No Connection: its libvirt daemon "
       "does not answer.",
       "bring it back with 'lpmlab lab up' (restarts its libvirtd), or recover "
       "an interrupted migration with 'migrlpar -o r -m SYS -p PARTITION "
       "--force', which restarts it; 'lpmlab lab status' shows the frame"),
    _c("HSCLL503", "warning", "remote HMC trust tested",
       "Key authentication to the remote HMC {obj} has not been tested.",
       "test it with 'mkauthkeys --test --ip {obj}'"),
    _c("HSCL3653", "error", "remote HMC trust",
       "The Secure Shell (SSH) communication configuration between the "
       "source and destination management consoles has not been set up "
       "properly for the remote user {user}. Run the mkauthkeys command to set up the "
       "SSH communication authentication keys (remote HMC {obj})",
       "exchange keys with 'mkauthkeys --ip {obj} -u {user}' (it asks for {user}'s "
       "password on the remote HMC), then check with 'mkauthkeys --test --ip {obj} -u "
       "{user}'"),
    _c("HSCLL504", "error", "partition is not a VIOS",
       "{obj} is a Virtual I/O Server; Virtual I/O Server partitions cannot "
       "migrate.",
       "name a mobile (AIX/Linux) partition; list them with "
       "'lssyscfg -r lpar -m {sys} -F name,lpar_env'"),
    # -- the managed systems
    _c("HSCLL510", "error", "mobility capable",
       "The managed system {obj} is not capable of partition mobility.",
       "set 'mobility_capable: true' for {obj} in the topology and "
       "rebuild the lab ('lpmlab lab down', 'lpmlab lab up')"),
    _c("HSCLL511", "error", "not on battery power",
       "The managed system {obj} is running on battery power.",
       "restore utility power: set 'battery_power: false' for {obj} in "
       "the topology"),
    _c("HSCLL512", "error", "identical LMB size",
       "The logical memory block size of the destination managed system "
       "{obj} is {dest_lmb} MB; the source managed system {src} uses "
       "{src_lmb} MB.",
       "give both frames the same lmb_size_mb in the topology"),
    _c("HSCLL513", "error", "destination memory",
       "The destination managed system {obj} has {free} MB free; partition "
       "{lpar} needs {need} MB ({basis}).",
       "free memory on {obj} (shut a partition down with 'chsysstate -m "
       "{obj} -r lpar -n NAME -o shutdown'), raise memory_mb of {obj} in the "
       "topology, or give {lpar} less memory"),
    _c("HSCLL514", "error", "destination processors",
       "The destination managed system {obj} has {free} processors free; "
       "partition {lpar} needs {need} ({basis}).",
       "free processors on {obj} (shut a partition down with 'chsysstate "
       "-m {obj} -r lpar -n NAME -o shutdown'), raise processors of {obj} "
       "in the topology, or give {lpar} fewer processors"),
    _c("HSCLL515", "error", "shared processor pool exists",
       "The shared processor pool {obj} does not exist on the destination "
       "managed system {sys} (pools: {pools}).",
       "name an existing pool in shared_proc_pool_name= (see 'lslparmigr "
       "-r procpool -m {src} -t {sys}')"),
    _c("HSCLL516", "error", "shared processor pool has room",
       "The shared processor pool {obj} on managed system {sys} has {free} "
       "processing units free; partition {lpar} needs {need}.",
       "pick another pool ('lslparmigr -r procpool -m {src} -t {sys}') or "
       "free processing units in {obj} on {sys}"),
    _c("HSCLL517", "error", "processor compatibility mode",
       "The destination managed system {obj} does not support the processor "
       "compatibility mode {mode} of partition {lpar} (it supports: {modes}).",
       "add {mode} to proc_compat_modes of {obj} in the topology, or give "
       "{lpar} a mode {obj} supports (proc_compat_mode)"),
    _c("HSCLL518", "error", "concurrent migrations under the system limit",
       "The managed system {obj} already runs {n} {kind} migrations; its "
       "limit is {limit}.",
       "wait for them ('lslparmigr -r lpar -m {obj}') or raise "
       "max_{kind}_migrations of {obj} in the topology"),
    _c("HSCLL519", "error", "distinct host UUIDs",
       "The managed systems {src} and {obj} have the same host UUID {uuid}; "
       "libvirt refuses to migrate a domain to the host it runs on.",
       "give every frame its own host_uuid in its libvirtd.conf "
       "('lpmlab lab down' then 'lpmlab lab up' generates new ones)"),
    _c("HSCLL520", "error", "same pseries machine type",
       "The destination managed system {obj} runs machine type {dest_machine}; "
       "the source managed system {src} runs {src_machine}.",
       "run the same QEMU on both frames (docs/host.md), or pin the "
       "partition's machine type to one both frames offer"),
    _c("HSCLL521", "warning", "same QEMU version",
       "The destination managed system {obj} runs QEMU {dest_version}; the "
       "source managed system {src} runs QEMU {src_version}.",
       "migration between QEMU versions usually works for the same machine "
       "type; install the same QEMU on both frames to rule it out"),
    _c("HSCLL522", "warning", "multi-processor partition on an affected QEMU",
       "QEMU {version} on managed system {sys} does not migrate the quiesced "
       "state of secondary processors; partition {obj} has {procs} "
       "processors, so lpmlab takes {cpus} offline before the switchover and "
       "brings them back on the destination (about 1 s).",
       "nothing to do; to avoid it use a QEMU with the fix ('target/ppc: "
       "Fix env->quiesced migration') or a 1-processor partition"),
    # -- the partition
    _c("HSCLL530", "error", "migration not disabled",
       "Partition {obj} has migration disabled.",
       "enable it with 'chsyscfg -r lpar -m {sys} -i "
       "\"name={obj},migration_disabled=0\"'"),
    _c("HSCLL531", "error", "not already migrating",
       "Partition {obj} is already migrating.",
       "wait for it ('lslparmigr -r lpar -m {sys}'), stop it with 'migrlpar "
       "-o s -m {sys} -p {obj}', or recover a failed one with 'migrlpar -o r "
       "-m {sys} -p {obj}'"),
    _c("HSCLL532", "error", "running (active migration)",
       "Partition {obj} is not running (state {state}); an active migration "
       "needs a running partition.",
       "activate it with 'chsysstate -m {sys} -r lpar -n {obj} -o on', or "
       "migrate it inactive"),
    _c("HSCLL533", "error", "shut off (inactive migration)",
       "Partition {obj} is not shut off (state {state}); an inactive "
       "migration needs a partition that is Not Activated.",
       "shut it down with 'chsysstate -m {sys} -r lpar -n {obj} -o shutdown "
       "--immed', or migrate it active"),
    _c("HSCLL534", "error", "RMC to the partition (active)",
       "There is no RMC connection to partition {obj}; an active migration "
       "needs it to run the partition's migration hooks.",
       "wait until the partition has booted and answers (" + _LPAR_OS +
       "), check its network and SSH server, or migrate it inactive"),
    _c("HSCLL535", "error", "no physical I/O",
       "Partition {obj} owns physical I/O adapters.",
       "remove them from the partition (in the lab: the <hostdev> devices "
       "of its domain, or metadata physical_io=0)"),
    _c("HSCLL536", "error", "no dedicated I/O",
       "Partition {obj} owns dedicated I/O (a dedicated or SR-IOV port).",
       "replace it with a virtual Ethernet adapter (in the lab: remove "
       "<interface type='hostdev'> from its domain, or metadata "
       "dedicated_io=0)"),
    _c("HSCLL537", "error", "only the virtual serial pair",
       "Partition {obj} has {n} virtual serial adapters; only the one console "
       "pair can migrate.",
       "remove the extra spapr-vty consoles from the partition's domain"),
    _c("HSCLL538", "error", "not in a workload group",
       "Partition {obj} is a member of a partition workload group.",
       "take it out of the group (in the lab: metadata workload_group=0)"),
    _c("HSCLL539", "error", "no BSR arrays (active)",
       "Partition {obj} uses {n} barrier synchronization register arrays; an "
       "active migration needs none.",
       "set its BSR arrays to 0 (in the lab: metadata bsr_arrays=0), or "
       "migrate it inactive"),
    _c("HSCLL540", "error", "no huge pages (active)",
       "Partition {obj} uses huge pages; an active migration needs none.",
       "remove its huge pages (in the lab: drop <memoryBacking><hugepages/> "
       "from its domain, or metadata huge_pages=0), or migrate it inactive"),
    _c("HSCLL541", "error", "name free on the destination",
       "A partition named {obj} already exists on the destination managed "
       "system {sys}.",
       "remove or rename it on {sys}; if it is left over from a failed "
       "migration, recover with 'migrlpar -o r -m {src} -p {obj}'"),
    _c("HSCLL542", "error", "partition ID free on the destination",
       "Partition ID {obj} is already used on the destination managed system "
       "{sys}.",
       "choose a free ID with -i \"dest_lpar_id=N\" (used: {used}), or leave "
       "dest_lpar_id out"),
    # -- Virtual I/O Servers, mover service partitions, storage
    _c("HSCLL550", "error", "RMC to the VIOS",
       "There is no RMC connection to the Virtual I/O Server {obj} on managed "
       "system {sys}, which the migration needs ({role}).",
       "check it with 'lpmlab lab status'; 'lpmlab lab up' restarts it, or "
       "shut it down ('chsysstate -m {sys} -r lpar -n {obj} -o shutdown') so "
       "the migration does not count on it"),
    _c("HSCLL551", "error", "an MSP on each side (active)",
       "No mover service partition is configured on managed system {obj}.",
       "make a VIOS of {obj} an MSP: 'chsyscfg -r lpar -m {obj} -i "
       "\"name=VIOS,msp=1\"' or 'msp: true' in the topology"),
    _c("HSCLL552", "error", "a working MSP on each side (active)",
       "No mover service partition on managed system {obj} can carry the "
       "migration: {detail}.",
       "start the VIOS and its mover link ('lpmlab lab status', 'lpmlab lab "
       "up'), or give it a mover_address in the topology"),
    _c("HSCLL553", "error", "named MSP exists",
       "The {side} mover service partition {obj} does not exist.",
       "name a VIOS of {sys} in {attr}= (see 'lslparmigr -r msp -m {src} -t "
       "{dest}')"),
    _c("HSCLL554", "error", "named VIOS is an MSP",
       "The Virtual I/O Server {obj} named as {side} mover service partition "
       "is not a mover service partition.",
       "make it one with 'chsyscfg -r lpar -m {sys} -i \"name={obj},msp=1\"' "
       "or name another VIOS"),
    _c("HSCLL555", "error", "named MSP on the right system",
       "The {side} mover service partition {obj} is on managed system "
       "{actual}, not on {sys}.",
       "name an MSP of {sys} (see 'lslparmigr -r msp -m {src} -t {dest}')"),
    _c("HSCLL556", "error", "named MSP working",
       "The {side} mover service partition {obj} cannot carry the migration: "
       "{detail}.",
       "start the VIOS and its mover link ('lpmlab lab status', 'lpmlab lab "
       "up'), or name another MSP"),
    _c("HSCLL557", "error", "MSP pair reachable on the mover network",
       "No pair of mover service partitions can reach each other on the "
       "mover network: {detail}.",
       "check the mover network and the MSP forwarding ('lpmlab lab status'); "
       "'lpmlab lab up' repairs links; free the migration ports of {dest}"),
    _c("HSCLL558", "error", "MSP under its concurrent migration limit",
       "The mover service partition {obj} already carries {n} active "
       "migrations; its configured limit is {limit}.",
       "wait, name another MSP, or raise the limit with 'migrlpar -o set -r "
       "lpar -m {sys} -p {obj} -i \"num_active_migrations_configured=N\"'"),
    _c("HSCLL559", "warning", "time reference partition",
       "No time reference partition is set on managed system {obj}; the "
       "partition's time of day may jump after the migration.",
       "set one: 'chsyscfg -r lpar -m {obj} -i \"name=VIOS,time_ref=1\"' or "
       "'time_ref: true' on a VIOS of {obj} in the topology"),
    _c("HSCLA319", "error", "storage hostable on the destination",
       "The virtual SCSI {kind} {obj} of partition {lpar} cannot be hosted "
       "by any Virtual I/O Server on the destination managed system {sys} "
       "({detail}).",
       "start a VIOS of {sys} that serves the partition's storage ('lpmlab "
       "lab up'), or add one to the topology"),
    _c("HSCLL560", "error", "redundant VIOS (--redundantvios)",
       "Only {n} Virtual I/O Server on the destination managed system {sys} "
       "can host storage {obj} ({hosts}); --redundantvios {level} asks for "
       "two.",
       "add a second VIOS on {sys} that serves {obj}, or run with "
       "--redundantvios 0"),
    _c("HSCLL561", "error", "storage really shared",
       "The storage {obj} of partition {lpar} is {detail} on {src} and {dest}; "
       "libvirt migrates only over shared storage.",
       "serve the same backing file from the VIOSes of both frames (the lab's "
       "SAN directory) and re-run 'lpmlab lab up'"),
    _c("HSCLL567", "error", "partition UUID kept on the destination (--uuid)",
       "Partition {obj} keeps its UUID {uuid} when it migrates, and partition "
       "{other} on the destination managed system {sys} already has it "
       "(--uuid {level}).",
       "remove or rename the other partition's definition on {sys}; the lab "
       "cannot give a migrating partition a new UUID (libvirt migrates a "
       "domain with its own), so --uuid 2 does not help here"),
    _c("HSCLL562", "error", "redundant MSPs (--redundantmsps)",
       "Only {n} independent mover service partition pair can carry the "
       "migration ({obj}); --redundantmsps {level} asks for two.",
       "make a second VIOS on each frame an MSP ('chsyscfg -r lpar -m SYS -i "
       "\"name=VIOS,msp=1\"'), or run with --redundantmsps 0"),
    _c("HSCLL563", "error", "VIOS named in virtual_scsi_mappings",
       "The Virtual I/O Server {obj} named in virtual_scsi_mappings is not on "
       "the destination managed system {sys}.",
       "name VIOSes of {sys} (see 'lslparmigr -r virtualio -m {src} -t {sys} "
       "--filter lpar_names={lpar}')"),
    _c("HSCLL564", "error", "VLANs bridged on the destination (--vlanbridge)",
       "VLAN {obj} of partition {lpar} is not bridged by a shared Ethernet "
       "adapter on the destination managed system {sys} (bridged: {bridged}); "
       "--vlanbridge {level} asks for every VLAN of the partition.",
       "bring the SEA of {sys} up ('lpmlab lab status'; 'lpmlab lab up' "
       "recreates bridge sea0 and its uplink), or run with --vlanbridge 2"),
    _c("HSCLL565", "error", "multipath on the destination (--mpio)",
       "Storage {obj} of partition {lpar} would have {n} path on the "
       "destination managed system {sys} ({hosts}); --mpio {level} asks for "
       "two paths through two Virtual I/O Servers.",
       "add a second VIOS on {sys} that serves {obj} (topology), start it if "
       "it is down, or run with --mpio 2"),
    _c("HSCLL566", "warning", "storage protection off (--protectstorage 2)",
       "The storage {obj} of partition {lpar} is not verified as shared "
       "between {src} and {dest}; --protectstorage 2 lets the migration go on "
       "without that protection.",
       "check that both frames' VIOSes serve the same backing file ('lpmlab "
       "lab status'), or leave --protectstorage at 1 to refuse unverified "
       "storage"),
    _c("HSCLL599", "error", "a check failed to run",
       "The validation check {obj} failed to run: {detail}.",
       "this is an lpmlab bug: report it with the snapshot; the other checks "
       "ran"),
)
