"""lpmlab's HSCL-style message codes in one table: code -> (message template, fix template).

Codes the real HMC documents keep their numbers (HSCL8012, HSCL3653, ...); the rest are
lpmlab's own, in the HSCLL4xx range, and say so in docs/hmc.md.
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "HSCL8012": ("The partition {obj} was not found on managed system {sys}.",
                 "list the partitions with 'lssyscfg -r lpar -m {sys}'"),
    "HSCL8011": ("The managed system {obj} was not found.",
                 "list the managed systems with 'lssyscfg -r sys -F name'"),
    "HSCLL404": ("No mover service partition is available on managed system {obj}.",
                 "set msp=1 on a VIOS of {obj} in the topology or with chsyscfg"),
    "HSCLL406": ("The migration of partition {obj} failed in the hypervisor: {detail}",
                 "the partition is still on {sys}; check 'lpmlab lab status' and retry"),
    "HSCLL407": ("No free migration port is left on managed system {obj}.",
                 "wait for running migrations to end, or widen migration_ports in the topology"),
    "HSCLL408": ("The migration of partition {obj} was stopped ({detail}).",
                 "the partition keeps running on {sys}; migrate it again when ready"),
    "HSCLL409": ("Partition {obj} is not migrating from managed system {sys}.",
                 "see 'lslparmigr -r lpar -m {sys}'; only a migration under way can be stopped"),
    "HSCLL410": ("Managed system {obj} already runs {detail} migrations, its limit.",
                 "wait for one to finish (lslparmigr -r sys -m {obj}) or raise "
                 "max_active_migrations in the topology"),
    "HSCLL411": ("The migration of partition {obj} is still under way ({detail}).",
                 "stop it with 'migrlpar -o s -m {sys} -p {obj}', or recover with --force"),
    "HSCLL412": ("Managed system {obj} does not answer.",
                 "recover with --force (restarts its hypervisor), or 'lpmlab lab up'"),
    "HSCLL413": ("Partition {obj} is defined on no managed system.",
                 "nothing to recover; recreate it with 'lpmlab lab up'"),
    "HSCLL414": ("The migration of partition {obj} failed in the hypervisor and left it "
                 "in an unclear state: {detail}",
                 "recover it with 'migrlpar -o r -m {sys} -p {obj}'"),
    "HSCLL450": ("The operating system of partition {obj} refused the migration: {detail}.",
                 "see the check hooks' output below (/etc/drmgr.d/pmig in the partition); fix "
                 "what they report and validate again"),
    "HSCLL451": ("The migration of partition {obj} was stopped: its operating system took "
                 "longer than the wait time ({detail}, -w).",
                 "the partition keeps running on {sys}; make its hooks faster or give more "
                 "minutes with -w (0 = no limit)"),
    "HSCLL452": ("The migration of partition {obj} did not converge: {detail}.",
                 "the partition keeps running on {sys}; see 'lpmlab report {id}', then lower "
                 "its dirty rate (lpmlab workload), raise the mover bandwidth, allow more "
                 "downtime (--max-downtime) or add --auto-converge"),
    "HSCLL453": ("The post-copy migration of partition {obj} was interrupted after the switch "
                 "to {dest}: part of its memory is only on {sys} ({detail}).",
                 "nothing was removed and its disk is intact; post-copy cannot be resumed in "
                 "this lab, so 'migrlpar -o r -m {sys} -p {obj} --force' boots it again from "
                 "its disk on {dest} (what was in its memory is lost)"),
    "HSCLL454": ("The migration of partition {obj} has switched to post-copy and can no longer "
                 "be stopped.",
                 "it already runs on {dest}; wait for the rest of its memory to follow "
                 "(lslparmigr -r lpar -m {sys})"),
    "HSCLL415": ("The mover service partition {obj} already carries {detail} migrations, its "
                 "configured limit.",
                 "wait for one to finish (lslparmigr -r msp -m {sys}) or raise it with "
                 "'migrlpar -o set -r lpar -m {sys} -p {obj} -i "
                 "\"num_active_migrations_configured=N\"'"),
    "HSCLL416": ("{obj} on managed system {sys} is not a Virtual I/O Server; {detail}.",
                 "name a VIOS: list them with 'lssyscfg -r lpar -m {sys} -F name,lpar_env,msp'"),
    "HSCLL417": ("The Virtual I/O Server {obj} on managed system {sys} is not a mover service "
                 "partition; {detail}.",
                 "make it one first: 'chsyscfg -r lpar -m {sys} -i \"name={obj},msp=1\"'"),
    "HSCLL418": ("migrlpar was given {detail} partitions; one command migrates at most {obj}.",
                 "split the partitions over several migrlpar commands "
                 "(see 'lslparmigr -r mc')"),
}


def text(code: str, **kw: object) -> tuple[str, str]:
    msg, fix = CODES[code]
    kw.setdefault("detail", "")
    kw.setdefault("sys", "")
    return msg.format(**kw), fix.format(**kw)
