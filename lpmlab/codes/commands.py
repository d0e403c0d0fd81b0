"""Codes of the HMC commands' input and of partition lifecycle (chsysstate, mkvterm,
chsyscfg, profiles): the HMC's own HSCL8001/HSCL350B/HSCL2976/HSCLA000, lpmlab's HSCLL42x
(migrlpar's ``-i``/``-f`` attributes and other attribute values), HSCLL430 (a managed system
the HMC cannot see into) and HSCLL44x (lifecycle)."""

from __future__ import annotations

from lpmlab import errors as E
from lpmlab.codes.entry import Code

FAMILY = "commands"
FREE = "{detail}"  # the raising site words the message (it names the attribute and value)
FREE_FIX = "{fix}"


def _c(code: str, error: type[E.LpmlabError], title: str, message: str = FREE,
       fix: str = FREE_FIX) -> Code:
    return Code(code, error, FAMILY, title, message, fix)


CODES: tuple[Code, ...] = (
    # -- syntax and attribute values (the attribute parser's families: lpmlab.hmc.attributes)
    _c("HSCL8001", E.UsageError, "bad command syntax (options, arguments), or malformed "
       "-i/-f text: unterminated quote, text after a closing quote, quote inside an unquoted "
       "field, empty field, missing '=', empty attribute name, attribute given twice, text too "
       "long"),
    _c("HSCLL420", E.UsageError, "unknown attribute name"),
    _c("HSCLL421", E.UsageError, "attribute not valid for this operation (e.g. -o set)"),
    _c("HSCLL422", E.UsageError, "bad value of a single-valued attribute: empty, not a number, "
       "out of range, not an IPv4 address, not a valid name, not one of the choices"),
    _c("HSCLL423", E.UsageError, "bad item in a list attribute: wrong number of '/' parts, "
       "required part missing, bad number, name or address in a part"),
    _c("HSCLL424", E.UsageError, "mutually exclusive attributes given together"),
    _c("HSCLL425", E.UsageError, "the same adapter slot, MSP or partition appears twice in "
       "one list"),
    _c("HSCLL426", E.UsageError, "the -f attribute file is missing, unreadable or not UTF-8 "
       "text"),
    # -- the HMC's own, worded by their sites
    _c("HSCL350B", E.UsageError, "the user lacks the authority (no such HMC user)",
       "HMC {obj} has no user {user}",
       "the HMC user is {hmc_user}"),
    _c("HSCL2976", E.RmcError, "the RMC (SSH) channel to a partition OS is down or a remote "
       "command failed"),
    _c("HSCLA000", E.MigrationError, "a partition migration failed or was refused (no more "
       "specific code)"),
    # -- the managed system's connection (no HMC code for it was found in the sources
    # searched: ibm.power_hmc, pypowervm, op-test; the state's name is the HMC's)
    _c("HSCLL430", E.FabricError, "the managed system named is connected (state Operating)",
       "Managed system {obj} is in state No Connection: the HMC cannot reach its hypervisor "
       "(libvirtd), so it cannot tell which partitions are on it or change them.{where}",
       "bring it back with 'lpmlab lab up' (restarts its libvirtd){hint}; 'lssyscfg -r sys "
       "-F name,state' shows it Operating again"),
    # -- partition lifecycle: chsysstate, profiles, mkvterm
    _c("HSCLL440", E.NotFoundError, "the profile named exists",
       "Partition {obj} on {sys} has no profile {profile}.",
       "use one of its profiles ({have}); list them with 'lssyscfg -r prof -m {sys} "
       "--filter lpar_names={obj}'"),
    _c("HSCLL441", E.MigrationError, "only a Not Activated partition is activated",
       "Partition {obj} on {sys} is {state}; only a Not Activated partition can be activated.",
       "shut it down first: 'chsysstate -m {sys} -r lpar -n {obj} -o shutdown --immed'"),
    _c("HSCLL442", E.MigrationError, "a partition runs in one place only",
       "Partition {obj} already runs on {other}.",
       "it may run in one place only; shut it down on {other} first"),
    _c("HSCLL443", E.MigrationError, "the managed system has room for the profile",
       "Managed system {obj} has {free_mem} MB and {free_procs} processors free; the profile "
       "asks for {mem} MB and {procs} processors.",
       "activate with a smaller profile (-f) or stop another partition"),
    _c("HSCLL444", E.MigrationError, "the partition to shut down is running",
       "Partition {obj} on {sys} is already Not Activated.",
       "nothing to do"),
    _c("HSCLL445", E.DeadlineError, "the partition powers off after a shutdown request",
       "partition {obj} did not power off within {seconds} s of the {how} shutdown request",
       "stop it with 'chsysstate -m {sys} -r lpar -n {obj} -o shutdown --immed'"),
    _c("HSCLL448", E.MigrationError, "osshutdown reaches the partition's OS over RMC",
       "There is no RMC connection to partition {obj}: {detail}",
       "use -o shutdown (power button) or --immed"),
    _c("HSCLL446", E.MigrationError, "one terminal session per partition (mkvterm)",
       "A terminal session is already open for this partition. Only one open session is "
       "allowed for a partition. Exiting.... ({obj})",
       "close it with 'rmvterm -m {sys} -p {obj}'"),
    _c("HSCLL447", E.MigrationError, "a terminal needs a running partition (mkvterm)",
       "Partition {obj} on {sys} is not running, so it has no terminal.",
       "activate it: 'chsysstate -m {sys} -r lpar -n {obj} -o on'"),
)
