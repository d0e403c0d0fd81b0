"""lpmlab's own codes (LPMxxxx): the generic code of each exception class and what the lab
commands (``lpmlab ...``) report. Numbers: LPM0xxx the root, LPM1xxx the lab, LPM2xxx libvirt."""

from __future__ import annotations

from lpmlab import errors as E
from lpmlab.codes.entry import Code

FAMILY = "lab"
FREE = "{detail}"  # the raising site words the message
FREE_FIX = "{fix}"


def _c(code: str, error: type[E.LpmlabError], title: str, message: str = FREE,
       fix: str = FREE_FIX) -> Code:
    return Code(code, error, FAMILY, title, message, fix)


CODES: tuple[Code, ...] = (
    _c("LPM0001", E.LpmlabError, "an lpmlab failure with no more specific code (a bug when "
       "it is an internal error)"),
    _c("LPM1001", E.TopologyError, "the lab topology file is malformed or inconsistent"),
    _c("LPM1002", E.LabNotRunningError, "the command needs a running lab and there is none"),
    _c("LPM1003", E.HostPrepError, "the host cannot run the lab (packages missing or too old)"),
    _c("LPM1004", E.PlaybookError, "an Ansible playbook failed"),
    _c("LPM1005", E.ImageBuildError, "the partition boot image could not be built"),
    _c("LPM1006", E.FabricError, "a namespace, bridge, daemon or target of the lab could not "
       "be created or reached"),
    _c("LPM1007", E.DeadlineError, "a wait ran out of time"),
    _c("LPM1008", E.NotFoundError, "the HMC a command speaks as is in the lab",
       "the lab has no HMC named {obj}",
       "use one of: {names} (LPMLAB_HMC)"),
    _c("LPM1009", E.FabricError, "the HMC's command server answers its shell",
       "the command server of HMC {obj} does not answer ({detail})",
       "bring it up on the lab host with 'lpmlab lab up'"),
    _c("LPM1010", E.NotFoundError, "a partition named to a lab command is in the lab",
       "The lab has no partition {obj}.",
       "list them with 'lpmlab lab status'"),
    _c("LPM1011", E.NotFoundError, "a migration named to 'lpmlab report' is on record",
       "No migration {obj} in the HMC's records or in {folder}.",
       "give a migration ID or a partition name (the latest of its migrations); list them "
       "with 'lslparmigr -r lpar -m sys1' or see the ID printed by 'migrlpar -o m -v'"),
    # -- lpmlab fault
    _c("LPM1020", E.UsageError, "a fault named to 'lpmlab fault' is in the catalogue",
       "There is no fault {obj}.",
       "choose one of: {names} ('lpmlab fault list' describes them)"),
    _c("LPM1021", E.UsageError, "--when names a point of a migration",
       "--when {obj} is not a point of a migration.",
       "give now, transferring, pass:N (N >= 1), switchover or phase:check|pre|post"),
    _c("LPM1022", E.UsageError, "a fault's argument and options fit it",
       "Fault {obj} cannot be used that way: {detail}.",
       "see 'lpmlab fault list' for what each fault takes"),
    _c("LPM1023", E.NotFoundError, "the object a fault hits is in the lab",
       "The fault cannot find its target {obj}: {detail}.",
       "name the target (-p, --vios, -m), or bring the lab back first ('lpmlab lab "
       "status', 'migrlpar -o r')"),
    _c("LPM1024", E.MigrationError, "a fault of a migration has a migration under way",
       "Fault {obj} hits a migration, and partition {lpar} is not migrating.",
       "arm it for the next migration with --when transferring (or pass:N, switchover), or "
       "start 'migrlpar -o m' first"),
    _c("LPM1025", E.NotFoundError, "'lpmlab fault clear' names faults that are armed or in "
       "force",
       "No armed or active fault {obj}.",
       "faults armed or in force: {active} (see 'lpmlab fault list')"),
    _c("LPM2001", E.HypervisorError, "libvirt refused or failed an operation"),
)
