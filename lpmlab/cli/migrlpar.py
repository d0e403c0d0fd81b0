"""migrlpar: validate, perform, stop or recover partition migrations (HMC syntax).

Silent on success; exit 0 success, 100 partial success (several partitions, some failed),
another non-zero code on failure, as the HMC.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_json_option,
    emit,
    emit_json,
    error_record,
    finish,
    run,
    whole_number,
)
from lpmlab.errors import LpmlabError, UsageError
from lpmlab.hmc import operations
from lpmlab.hmc.attributes import (
    MIGRATE_ATTRIBUTES,
    SET_LPAR_ATTRIBUTES,
    SET_SYS_ATTRIBUTES,
    MigrationAttributes,
    parse_attributes,
    read_attribute_file,
)
from lpmlab.hmc.hooks import DEFAULT_WAIT_MINUTES
from lpmlab.hmc.operations import (
    DEFAULT_DETAIL_LEVEL,
    MigrlparOutcome,
    MigrlparRequest,
    SetSettings,
)
from lpmlab.hmc.precopy import DEFAULT_STALL_S, SCHEDULES, Controls, TelemetryObserver
from lpmlab.hmc.validation import OVERRIDE_CHOICES

PARTIAL = 100
# -w's largest value (a day): beyond it a wait overflows the timeouts of poll() and sockets
# (about 24 days in milliseconds), and -w 0 already means no limit
MAX_WAIT_MINUTES = 1440
# The tri-state overrides (1 = required, 2 = if possible, 0 = off) and their values.
OVERRIDES = OVERRIDE_CHOICES
# Which -o each option is valid with: option text -> (args attribute, operations).
OPTION_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-w": ("wait_minutes", ("m", "v")),
    "-n": ("profile", ("m", "v")),
    "-d": ("detail_level", ("m", "v")),
    "--steps": ("steps", ("m", "s", "r")),
    "--nodetails": ("nodetails", ("m", "v", "s", "r")),
    "--force": ("force", ("r",)),
    "-r": ("set_resource", ("set",)),
    **{f"--{name}": (name, ("m", "v")) for name in OVERRIDES},
    # lpmlab's convergence controls (no HMC has them): only a transfer can use them
    "--mover-bandwidth": ("mover_bandwidth", ("m",)),
    "--max-speed": ("max_speed", ("m",)),
    "--max-downtime": ("max_downtime", ("m",)),
    "--auto-converge": ("auto_converge", ("m",)),
    "--postcopy": ("postcopy", ("m",)),
    "--schedule": ("schedule", ("m",)),
    "--stall-timeout": ("stall_timeout", ("m",)),
    "--noprogress": ("noprogress", ("m",)),
    "--progress": ("force_progress", ("m",)),
    "--ip": ("remote_ip", ("m", "v", "r")),
    "-u": ("remote_user", ("m", "v", "r")),
}


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="migrlpar", description="Migrate partitions between managed "
                          "systems (Live Partition Mobility).")
    p.add_argument("-o", dest="op", required=True, choices=["m", "v", "s", "r", "set"],
                   help="m: validate and migrate; v: validate; s: stop; r: recover; "
                        "set: change mobility settings (with -r sys|lpar)")
    p.add_argument("-m", dest="system", help="source managed system")
    p.add_argument("-t", dest="target", help="destination managed system (-o m, -o v)")
    p.add_argument("--ip", dest="remote_ip",
                   help="the HMC that manages the destination, when it is another one (its "
                        "address or lab name); needs key trust (mkauthkeys)")
    p.add_argument("-u", dest="remote_user", help="user on that HMC (default hscroot)")
    p.add_argument("-r", dest="set_resource", choices=["sys", "lpar"],
                   help="-o set: sys (inactive_prof_policy) or lpar (an MSP's settings)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", dest="names", help="partition name(s), comma separated")
    who.add_argument("--id", dest="ids", help="partition ID(s), comma separated")
    who.add_argument("--all", action="store_true", help="every partition (-o m, -o s)")
    attrs = p.add_mutually_exclusive_group()
    attrs.add_argument("-i", dest="attrs", help='attributes, e.g. "dest_msp_name=vios2,'
                       'source_msp_name=vios1" (quote a list value: "\\"a=1,2\\"")')
    attrs.add_argument("-f", dest="attr_file", help="file holding the -i attributes")
    p.add_argument("-n", dest="profile", help="profile the partition has on the destination "
                   "(-o m, -o v): active: the current configuration is saved as it; "
                   "inactive: sizes it with inactive_prof_policy=prof")
    p.add_argument("--force", action="store_true", help="recover even when the migration "
                   "looks alive or a managed system does not answer (-o r only)")
    p.add_argument("-v", dest="verbose", action="store_true",
                   help="print details and warnings even on success")
    p.add_argument("-w", dest="wait_minutes", type=whole_number, metavar="MINUTES",
                   help="minutes to wait for the partition OS (hooks); 0 = no limit "
                        f"(default {DEFAULT_WAIT_MINUTES})")
    p.add_argument("-d", dest="detail_level", type=whole_number, metavar="LEVEL",
                   help="detail level 1-5 (default 1; 2 and up print details on success)")
    p.add_argument("--steps", type=whole_number, choices=[0, 1, 2],
                   help="afterwards print the migration's steps: 1 every step, 2 failed ones")
    p.add_argument("--nodetails", action="store_true",
                   help="on failure print only the code, message and fix")
    add_json_option(p, "each partition's outcome (-o v: every finding; -o set: the settings)")
    for name, values in OVERRIDES.items():
        p.add_argument(f"--{name}", type=whole_number, choices=list(values),
                       help="1 = required, 2 = if possible" + (", 0 = off" if 0 in values
                                                               else ""))
    conv = p.add_argument_group("pre-copy convergence controls (lpmlab only, -o m; "
                                "see docs/precopy.md)")
    conv.add_argument("--mover-bandwidth", type=float, metavar="MIB_S",
                      help="cap the source MSP's mover link (tc tbf) during the migration")
    conv.add_argument("--max-speed", type=whole_number, metavar="MIB_S",
                      help="libvirt's migration bandwidth limit (QEMU max-bandwidth)")
    conv.add_argument("--max-downtime", type=whole_number, metavar="MS",
                      help="allowed downtime (QEMU downtime-limit, default 300 ms)")
    conv.add_argument("--auto-converge", action="store_true",
                      help="let QEMU throttle the partition's processors while pre-copy "
                           "falls behind")
    conv.add_argument("--postcopy", action="store_true",
                      help="allow a switch to post-copy (PowerVM LPM has none); by default "
                           "after 3 iterations without progress")
    conv.add_argument("--schedule", choices=list(SCHEDULES),
                      help="what to do iteration by iteration while pre-copy makes no "
                           "progress (default none)")
    conv.add_argument("--stall-timeout", type=float, metavar="SECONDS",
                      help="end the migration (HSCLL455) when its stream moves nothing this "
                           f"long (default {DEFAULT_STALL_S:g}; 0 = never)")
    conv.add_argument("--noprogress", action="store_true",
                      help="no live progress on stderr")
    conv.add_argument("--progress", dest="force_progress", action="store_true",
                      help="live progress on stderr even when it is not a terminal (by "
                           "default only a terminal gets it: piped, migrlpar is silent)")
    return p


def controls(args: argparse.Namespace) -> Controls:
    """The convergence controls of ``-o m`` (a bad one raises before anything starts)."""
    return Controls(mover_bandwidth_mib=args.mover_bandwidth, max_speed_mib=args.max_speed,
                    max_downtime_ms=args.max_downtime, auto_converge=args.auto_converge,
                    postcopy=args.postcopy, schedule=args.schedule or "none",
                    stall_timeout_s=DEFAULT_STALL_S if args.stall_timeout is None
                    else args.stall_timeout)


def _missing(what: str) -> UsageError:
    # the same words argparse uses for a missing required argument
    return UsageError(f"migrlpar: the following arguments are required: {what}",
                      fix="see 'migrlpar --help'")


def _given(args: argparse.Namespace, attr: str) -> bool:
    value = getattr(args, attr)
    return value is not None and value is not False


def check_syntax(args: argparse.Namespace) -> None:
    op: str = args.op
    if not args.system and not (op == "set" and args.set_resource == "sys"):
        raise _missing("-m")
    for opt, (attr, ops) in OPTION_OPS.items():
        if _given(args, attr) and op not in ops:
            raise UsageError(f"{opt} is only valid with -o {' or -o '.join(ops)}",
                             fix=f"drop {opt}")
    if op == "set":
        check_set_syntax(args)
        return
    if not (args.names or args.ids or args.all):
        raise _missing("one of the arguments -p --id --all")
    if op in ("m", "v") and not args.target:
        raise UsageError(f"-t is required with -o {op}",
                         fix="name the destination managed system with -t")
    if op in ("s", "r") and args.target:
        raise UsageError(f"-t is not valid with -o {op}", fix="drop -t")
    if args.all and op not in ("m", "s"):
        raise UsageError(f"--all is not valid with -o {op}", fix="name the partition with -p")
    many = "," in (args.names or args.ids or "")
    listed = [x for x in (args.names or args.ids or "").split(",") if x]
    twice = sorted({x for x in listed if listed.count(x) > 1})
    if twice:
        # one partition cannot be validated or moved twice at once (two threads would race)
        raise UsageError(f"partition {twice[0]} is named twice",
                         fix=f"name each partition once: {','.join(dict.fromkeys(listed))}")
    if many and op not in ("m", "v"):
        raise UsageError(f"-o {op} takes one partition", fix="name one partition with -p")
    if args.profile is not None:
        if many or args.all:
            raise UsageError("-n names the profile of one partition",
                             fix="migrate one partition with -p, or give several profiles "
                                 'with -i "multiple_profile_names=..."')
        from lpmlab.hmc.profiles import check_profile_name

        check_profile_name(args.profile)
    if args.wait_minutes is not None and not 0 <= args.wait_minutes <= MAX_WAIT_MINUTES:
        raise UsageError(f"-w {args.wait_minutes}: the wait time must be 0 (no limit) to "
                         f"{MAX_WAIT_MINUTES} minutes",
                         fix="write -w 3, or -w 0 to wait without limit")
    if args.detail_level is not None and not 1 <= args.detail_level <= 5:
        raise UsageError(f"-d {args.detail_level}: the detail level must be 1 to 5",
                         fix="write -d 1 (least detail) to -d 5 (most)")
    if args.verbose and args.nodetails:
        raise UsageError("-v and --nodetails contradict each other", fix="give one of them")
    if args.remote_user and not args.remote_ip:
        raise UsageError("-u names the user on the remote HMC: it needs --ip",
                         fix="add --ip with the remote HMC's address, or drop -u")


def check_set_syntax(args: argparse.Namespace) -> None:
    """``-o set -r sys [-m sys] -i ...`` / ``-o set -r lpar -m sys {-p vios|--id n} -i ...``."""
    if args.set_resource is None:
        raise UsageError("-o set needs -r sys or -r lpar",
                         fix='write -r sys -i "inactive_prof_policy=..." or -r lpar -p VIOS '
                             '-i "num_active_migrations_configured=N"')
    if args.target or args.all or args.verbose:
        bad = "-t" if args.target else "--all" if args.all else "-v"
        raise UsageError(f"{bad} is not valid with -o set", fix=f"drop {bad}")
    if args.attrs is None and args.attr_file is None:
        raise UsageError("-o set needs the settings in -i or -f",
                         fix='e.g. -i "inactive_prof_policy=config"')
    named = args.names or args.ids
    if args.set_resource == "sys" and named:
        raise UsageError("-o set -r sys takes no partition", fix="drop -p/--id")
    if args.set_resource == "lpar":
        if not named:
            raise _missing("one of the arguments -p --id")
        if "," in named:
            raise UsageError("-o set -r lpar takes one mover service partition",
                             fix="name one VIOS with -p")
        if args.ids and not (args.ids.isascii() and args.ids.isdigit()):
            raise UsageError(f"--id {args.ids}: not a partition ID", fix="write --id 1")


def parse_attrs(args: argparse.Namespace) -> MigrationAttributes:
    text = args.attrs
    if args.attr_file is not None:  # -f "" is an unreadable file, not no attributes
        text = read_attribute_file(args.attr_file)
    if text is None:
        return MigrationAttributes()
    if args.op not in ("m", "v", "set"):
        raise UsageError(f"-i/-f are not valid with -o {args.op}", fix="drop them")
    if args.op == "set":
        allowed = SET_SYS_ATTRIBUTES if args.set_resource == "sys" else SET_LPAR_ATTRIBUTES
        return parse_attributes(text, allowed=allowed)
    return parse_attributes(text, allowed=MIGRATE_ATTRIBUTES)


def request(args: argparse.Namespace, attrs: MigrationAttributes, ctl: Controls,
            progress: TelemetryObserver | None) -> MigrlparRequest:
    """The partition operation the arguments ask for, with the HMC's defaults."""
    return MigrlparRequest(
        op=args.op, system=args.system, target=args.target,
        names=tuple(args.names.split(",")) if args.names else (),
        ids=tuple(args.ids.split(",")) if args.ids else (), all=args.all, attrs=attrs,
        profile=args.profile,
        overrides={n: getattr(args, n) for n in OVERRIDES if getattr(args, n) is not None},
        wait_minutes=DEFAULT_WAIT_MINUTES if args.wait_minutes is None else args.wait_minutes,
        detail_level=(DEFAULT_DETAIL_LEVEL if args.detail_level is None
                      else args.detail_level),
        controls=ctl, observer=progress, remote_ip=args.remote_ip,
        remote_user=args.remote_user, force=args.force, steps=args.steps)


def describe(op: str, outcome: MigrlparOutcome, result: Any) -> str:
    """A successful partition's details, as printed with -v, -d 2 or -o v."""
    if result is None:
        return ""
    if op == "v":
        report, checked = result.report, result.os_check
        return "\n".join(x for x in (report.render(), checked.render() if checked else "")
                         if x)
    if op == "r":
        return "; ".join(result.actions) or "nothing to recover"
    if op != "m":
        return ""
    j = result.stats
    lines = [f"{outcome.system} -> {outcome.target} in {result.wall_s:.2f} s, downtime "
             f"{j.get('downtime', '?')} ms, {j.get('memory_iteration', '?')} iterations, "
             f"{j.get('data_processed', 0)} bytes"]
    for ph in result.record.stats.get("hooks", []):
        # each hook's exit and output, as the HMC shows the partition's messages
        lines.append(f"{ph['phase']} hooks: {len(ph['hooks'])} in {ph['seconds']:.2f} s"
                     + (f" ({ph['error']})" if ph.get("error") else ""))
        for h in ph["hooks"]:
            lines.append(f"  {h['hook']}: exit {h['rc']}"
                         + (" (timed out)" if h.get("timed_out") else ""))
            lines.extend("    " + t for t in (h.get("stdout", "") + h.get("stderr", ""))
                         .rstrip().splitlines())
    return "\n".join(lines)


def result_record(op: str, result: Any) -> dict[str, Any]:
    """A successful partition's result for --json."""
    if result is None:
        return {}
    if op == "v":
        return {"findings": result.report.records(),
                "os_check": result.os_check.record() if result.os_check else None}
    if op == "m":
        return {"migration_id": result.record.id, "wall_s": round(result.wall_s, 3),
                "job": result.stats, "hooks": result.record.stats.get("hooks", [])}
    if op == "s":
        return {"migration_id": result.id, "state": result.state}
    return {"frame": result.frame, "actions": result.actions,
            "seconds": round(result.seconds, 3)}


def json_document(req: MigrlparRequest, outcome: MigrlparOutcome, rc: int) -> dict[str, Any]:
    """--json: the operation, the systems, each partition's result or error, the steps."""
    parts = []
    for o in outcome.partitions:
        if o.error is not None:
            parts.append({"name": o.name, "ok": False, "error": error_record(o.error)})
        else:
            parts.append({"name": o.name, "ok": True, **result_record(req.op, o.result)})
    doc: dict[str, Any] = {"operation": req.op, "managed_system": outcome.system,
                           "target": outcome.target, "partitions": parts, "exit_code": rc}
    if req.steps:
        doc["steps"] = outcome.steps
    return doc


def render_error(err: LpmlabError, nodetails: bool) -> str:
    """The error as shown; --nodetails keeps code, message and fix, not the whole report."""
    if not nodetails:
        return err.render()
    return f"{err.code} {err.message}" + (f"\nFix: {err.fix}" if err.fix else "")


def report(args: argparse.Namespace, req: MigrlparRequest, outcome: MigrlparOutcome) -> int:
    """Errors, then (with -v, -d 2+, -o v) details on stderr; --steps on stdout; the exit
    status: 0, 100 when only some partitions failed, else the first error's."""
    many = len(outcome.partitions) > 1
    details = (args.verbose or req.op == "v" or req.detail_level >= 2) and not args.nodetails
    for o in outcome.partitions:
        if o.error is not None:
            text = render_error(o.error, args.nodetails)
            print(f"{o.name}: {text}" if many else text, file=sys.stderr)
        elif details:
            detail = describe(req.op, outcome, o.result)
            if detail:
                print(f"{o.name}: {detail}", file=sys.stderr)
    rc = exit_status(outcome)
    if args.json:
        emit_json(json_document(req, outcome, rc))
    elif args.steps:
        from lpmlab.hmc import records

        emit(records.render(outcome.steps))
    return rc


def exit_status(outcome: MigrlparOutcome) -> int:
    if not outcome.failed:
        return 0
    if outcome.partial:
        return PARTIAL
    err = outcome.failed[0].error
    return err.exit_code if err is not None else 1


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    check_syntax(args)
    if args.op in ("m", "r"):
        # as on the HMC, a migration (or recovery) goes on when the session that started it
        # hangs up (an SSH client timing out, a terminal closed); Ctrl-C still stops it
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    attrs = parse_attrs(args)
    ctl = controls(args) if args.op == "m" else Controls()
    if args.noprogress and args.force_progress:
        raise UsageError("--progress and --noprogress contradict each other",
                         fix="give one of them")
    progress = None
    if args.op == "m" and not args.noprogress and (args.force_progress
                                                   or sys.stderr.isatty()):
        from lpmlab.cli.progress import MigrationProgress

        progress = MigrationProgress()
    if args.op == "set":
        # silent on success, nothing changed on any error
        done = SetSettings(args.set_resource, args.system, attrs, name=args.names,
                           lpar_id=int(args.ids) if args.ids else None).execute()
        if args.json:
            emit_json({"operation": "set", "resource": done.resource,
                       "settings": done.settings})
        return 0
    req = request(args, attrs, ctl, progress)
    outcome = operations.for_request(req).execute()
    if progress is not None:
        progress.finish()
    return report(args, req, outcome)


def cli() -> None:
    finish(run(main))
