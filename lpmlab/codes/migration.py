"""Codes of migrations under way and of HMC-to-HMC work (lpmlab's HSCLL40x-41x, HSCLL45x,
HSCLL47x): what ``migrlpar -o m|s|r|set`` and ``mkauthkeys`` report after validation."""

from __future__ import annotations

from lpmlab import errors as E
from lpmlab.codes.entry import Code

FAMILY = "migration"


def _c(code: str, error: type[E.LpmlabError], title: str, message: str, fix: str) -> Code:
    return Code(code, error, FAMILY, title, message, fix)


_MIG = E.MigrationError

CODES: tuple[Code, ...] = (
    # -- taking the resources of a migration
    _c("HSCLL404", _MIG, "an MSP on each side when the transfer starts",
       "No mover service partition is available on managed system {obj}.",
       "set msp=1 on a VIOS of {obj} in the topology or with chsyscfg"),
    _c("HSCLL405", _MIG, "the MSP carrying the stream has a mover address",
       "The mover service partition {obj} has no address on the mover network, so it cannot "
       "carry the migration.",
       "give {obj} a mover_address in the topology and run 'lpmlab lab up', or name another "
       "MSP"),
    _c("HSCLL406", _MIG, "the hypervisor's migration failed; the partition stayed",
       "The migration of partition {obj} failed in the hypervisor: {detail}",
       "the partition is still on {sys}; check 'lpmlab lab status' and retry"),
    _c("HSCLL407", _MIG, "a free migration port on the destination",
       "No free migration port is left on managed system {obj}.",
       "wait for running migrations to end, or widen migration_ports in the topology"),
    _c("HSCLL408", _MIG, "the migration was stopped (migrlpar -o s)",
       "The migration of partition {obj} was stopped ({detail}).",
       "the partition keeps running on {sys}; migrate it again when ready"),
    _c("HSCLL409", _MIG, "only a migration under way can be stopped",
       "Partition {obj} is not migrating from managed system {sys}.",
       "see 'lslparmigr -r lpar -m {sys}'; only a migration under way can be stopped"),
    _c("HSCLL410", _MIG, "the managed system's concurrent migration limit, when claimed",
       "Managed system {obj} already runs {detail} migrations, its limit.",
       "wait for one to finish (lslparmigr -r sys -m {obj}) or raise max_active_migrations "
       "in the topology"),
    _c("HSCLL411", _MIG, "recovery waits for a migration that is still alive",
       "The migration of partition {obj} is still under way ({detail}).",
       "stop it with 'migrlpar -o s -m {sys} -p {obj}', or recover with --force"),
    _c("HSCLL412", _MIG, "recovery reaches both managed systems",
       "Managed system {obj} does not answer.",
       "recover with --force (restarts its hypervisor), or 'lpmlab lab up'"),
    _c("HSCLL413", _MIG, "recovery finds the partition somewhere",
       "Partition {obj} is defined on no managed system.",
       "nothing to recover; recreate it with 'lpmlab lab up'"),
    _c("HSCLL414", _MIG, "a failed migration left the partition in an unclear state",
       "The migration of partition {obj} failed in the hypervisor and left it in an unclear "
       "state: {detail}",
       "recover it with 'migrlpar -o r -m {sys} -p {obj}'"),
    _c("HSCLL415", _MIG, "the MSP's concurrent migration limit, when claimed",
       "The mover service partition {obj} already carries {detail} migrations, its "
       "configured limit.",
       "wait for one to finish (lslparmigr -r msp -m {sys}) or raise it with 'migrlpar -o "
       "set -r lpar -m {sys} -p {obj} -i \"num_active_migrations_configured=N\"'"),
    _c("HSCLL416", E.UsageError, "migrlpar -o set -r lpar names a VIOS",
       "{obj} on managed system {sys} is not a Virtual I/O Server; {detail}.",
       "name a VIOS: list them with 'lssyscfg -r lpar -m {sys} -F name,lpar_env,msp'"),
    _c("HSCLL417", E.UsageError, "migrlpar -o set -r lpar names an MSP",
       "The Virtual I/O Server {obj} on managed system {sys} is not a mover service "
       "partition; {detail}.",
       "make it one first: 'chsyscfg -r lpar -m {sys} -i \"name={obj},msp=1\"'"),
    _c("HSCLL418", E.UsageError, "at most max_lpars_per_migrlpar_cmd partitions per command",
       "migrlpar was given {detail} partitions; one command migrates at most {obj}.",
       "split the partitions over several migrlpar commands (see 'lslparmigr -r mc')"),
    # -- the partition's OS and the transfer
    _c("HSCLL450", _MIG, "the partition's check hooks accept the migration",
       "The operating system of partition {obj} refused the migration: {detail}.",
       "see the check hooks' output below (/etc/drmgr.d/pmig in the partition); fix what "
       "they report and validate again"),
    _c("HSCLL451", _MIG, "the partition's OS answers within -w",
       "The migration of partition {obj} was stopped: its operating system took longer than "
       "the wait time ({detail}, -w).",
       "the partition keeps running on {sys}; make its hooks faster or give more minutes "
       "with -w (0 = no limit)"),
    _c("HSCLL452", _MIG, "pre-copy converges (the --schedule gave up)",
       "The migration of partition {obj} did not converge: {detail}.",
       "the partition keeps running on {sys}; see 'lpmlab report {id}', then lower its dirty "
       "rate (lpmlab workload), raise the mover bandwidth, allow more downtime "
       "(--max-downtime) or add --auto-converge"),
    _c("HSCLL453", _MIG, "a post-copy migration completes",
       "The post-copy migration of partition {obj} was interrupted after the switch to "
       "{dest}: part of its memory is only on {sys} ({detail}).",
       "nothing was removed and its disk is intact; post-copy cannot be resumed in this lab, "
       "so 'migrlpar -o r -m {sys} -p {obj} --force' boots it again from its disk on {dest} "
       "(what was in its memory is lost)"),
    _c("HSCLL454", _MIG, "a migration in post-copy cannot be stopped",
       "The migration of partition {obj} has switched to post-copy and can no longer be "
       "stopped.",
       "it already runs on {dest}; wait for the rest of its memory to follow (lslparmigr -r "
       "lpar -m {sys})"),
    _c("HSCLL455", _MIG, "the migration's stream keeps moving (a stalled transfer ends)",
       "The migration of partition {obj} stalled and was stopped: {detail}.",
       "the partition keeps running on {sys}; find what broke the path with 'lpmlab lab "
       "status' and 'lpmlab fault list' (a mover link, an MSP, a VIOS's storage), repair it "
       "('lpmlab fault clear' or 'lpmlab lab up') and migrate again; --stall-timeout sets "
       "how long a transfer may move nothing (0 = never)"),
    _c("HSCLL456", _MIG, "the partition still runs on the destination after the switch",
       "Partition {obj} moved to {dest}, but it is no longer running there ({detail}); its "
       "post hooks did not run.",
       "its disk is intact: activate it on {dest} with 'chsysstate -m {dest} -r lpar -o on "
       "-n {obj}' (or 'migrlpar -o r -m {dest} -p {obj}'), then look for what stopped it "
       "('lpmlab fault list', the frame's QEMU log under the lab folder)"),
    _c("HSCLL457", _MIG, "a stop request reaches the migration's hypervisor",
       "The migration of partition {obj} could not be stopped: {detail}.",
       "it may still be under way: see 'lslparmigr -r lpar -m {sys}' and try 'migrlpar -o s' "
       "again; if {sys} does not answer ('lpmlab lab status'), bring it back ('lpmlab lab "
       "up') and recover with 'migrlpar -o r -m {sys} -p {obj}'"),
    # -- another HMC
    _c("HSCLL470", _MIG, "the remote HMC accepts the user's password (mkauthkeys)",
       "The remote HMC {obj} refused the password of {user}.",
       "give the remote user's password (--passwd)"),
    _c("HSCLL471", E.FabricError, "the remote HMC answers over SSH",
       "The remote HMC {obj} cannot be reached: {detail}.",
       "check its address (--ip) and that it runs ('lpmlab lab status' on its lab host)"),
    _c("HSCLL479", E.FabricError, "the remote HMC's host key is the one recorded",
       "The host key of the remote HMC {obj} changed since {path} recorded it.",
       "if it was recreated on purpose, remove its line from {path}"),
    _c("HSCLL472", _MIG, "the remote HMC carries out what it is asked",
       "The remote HMC {obj} answered: {detail}",
       "see the remote HMC's message; run the command there to see it whole"),
    _c("HSCLL473", E.NotFoundError, "the incoming migration the source names is on record",
       "HMC {obj} has no incoming migration {id}.",
       "see 'lslparmigr -r lpar -m SYS' there"),
    _c("HSCLL474", _MIG, "the only running copy of a partition is never removed",
       "{obj} runs on {sys} and nowhere else here; it is not removed",
       "recover the migration from the source's HMC ('migrlpar -o r')"),
    _c("HSCLL475", E.UsageError, "an SSH public key line (mkauthkeys -a)",
       "{detail}",
       "{fix}"),
    _c("HSCLL476", E.UsageError, "the key to remove is accepted here (mkauthkeys -r)",
       "HMC {obj} has no authorized key {key!r}",
       "see the keys' comments in the exchange you made (mkauthkeys --ip ... adds user@hmc)"),
    _c("HSCLL477", E.UsageError, "post-copy stays on one HMC",
       "--postcopy is not offered for a migration to another HMC's managed system",
       "drop --postcopy"),
    _c("HSCLL478", _MIG, "a migration is recovered by the HMC that started it",
       "The migration of partition {obj} from {sys} was started by HMC {hmc}, which manages "
       "the source.",
       "recover it there: 'migrlpar -o r -m {sys} -p {obj}' on {hmc}"),
)
