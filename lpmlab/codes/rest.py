"""Codes of the HMC's REST API (HSCLRnnn): logon and sessions, the URLs and documents a
client sends, and the jobs it runs. A job's own failure carries the code of the command it
ran (migrlpar's, chsysstate's), not one of these."""

from __future__ import annotations

from lpmlab import errors as E
from lpmlab.codes.entry import Code

FAMILY = "rest"


def _c(code: str, error: type[E.LpmlabError], title: str, message: str, fix: str,
       http_status: int = 0) -> Code:
    return Code(code, error, FAMILY, title, message, fix, http_status=http_status)


CODES: tuple[Code, ...] = (
    _c("HSCLR401", E.AccessError, "the user and password given at logon",
       "The user name or password given to HMC {obj} is not valid.",
       "log on as the HMC user with the password 'lpmlab lab status' shows"),
    _c("HSCLR402", E.AccessError, "a request carries a valid session",
       "The request has no valid session: {detail}.",
       "log on (PUT /rest/api/web/Logon) and send the X-API-Session it returns on every "
       "request"),
    _c("HSCLR400", E.UsageError, "a request body is the document the URL takes",
       "The request body is not a valid {what}: {detail}.",
       "send a {what} document (see docs/rest-api.md)"),
    _c("HSCLR404", E.NotFoundError, "the object a URL names exists",
       "HMC {obj} has no {kind} with UUID {uuid}.",
       "list them with GET /rest/api/uom/{kind}"),
    _c("HSCLR405", E.UsageError, "the URL takes the request's method",
       "{method} is not allowed on {path}.",
       "use {allowed}", 405),
    _c("HSCLR406", E.UsageError, "a job is one the object runs",
       "{kind} has no job {obj}.",
       "run one of: {allowed}"),
    _c("HSCLR407", E.UsageError, "a job's parameters",
       "Job {obj}: {detail}.",
       "{fix}"),
    _c("HSCLR408", E.UsageError, "only a finished job is deleted",
       "Job {job} ({operation}) is still running.",
       "wait for it to end (GET /rest/api/uom/jobs/{job}) or cancel it (POST "
       "/rest/api/uom/jobs/{job}/cancel), then delete it", 409),
    _c("HSCLR409", E.MigrationError, "the API's room for jobs",
       "HMC {obj} cannot take another job: {detail}.",
       "wait for running jobs to end, and delete the finished ones", 503),
    # the HMC's own codes that REST clients test for (a power job's result starts with them)
    _c("HSCL3681", E.MigrationError, "the HMC's code: the partition is already running",
       "The partition {obj} is already running.", "nothing to do"),
    _c("HSCL1558", E.MigrationError, "the HMC's code: the partition is already powered off",
       "The partition {obj} is already powered off.", "nothing to do"),
    _c("HSCLR410", E.NotFoundError, "the job a URL names exists",
       "HMC {obj} has no job {job}: it never ran here, or it was deleted.",
       "use the JobID the job's PUT returned"),
    _c("HSCLR411", E.NotFoundError, "the URL names something the API serves",
       "HMC {obj} serves nothing at {path}.",
       "see docs/rest-api.md for the URLs lpmlab serves"),
)
