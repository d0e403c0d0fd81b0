"""The REST API's ``web`` documents: LogonResponse, JobRequest templates, JobResponse and
HttpErrorResponse."""

from __future__ import annotations

import uuid as uuidlib

from lpmlab.errors import LpmlabError
from lpmlab.rest.atom import WEB, Entry, ObjectBuilder
from lpmlab.rest.jobs import Job

WEB_TYPE = "application/vnd.ibm.powervm.web+xml; type={}"


def logon_response(token: str) -> str:
    """A bare LogonResponse (not Atom); the token is a direct child of the root."""
    ob = ObjectBuilder(WEB, "LogonResponse")
    ob.add("X-API-Session", token)
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ob.xml()


def job_template(group: str, operation: str, href: str) -> Entry:
    """What ``GET .../do/OPERATION`` answers: a JobRequest for the client to fill in."""
    ob = ObjectBuilder(WEB, "JobRequest")
    op = ob.group("RequestedOperation")
    ob.fields({"OperationName": operation, "GroupName": group, "ProgressType": "DISCRETE"}, op)
    ob.group("JobParameters")
    return Entry(str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, href)), "JobRequest", href,
                 WEB_TYPE.format("JobRequest"), ob.xml())


def job_response(job: Job, href: str) -> Entry:
    ob = ObjectBuilder(WEB, "JobResponse")
    ob.fields({"RequestURL": f"{job.group}/{job.target_uuid}/do/{job.command.operation}",
               "TargetUuid": job.target_uuid, "JobID": job.id,
               "TimeStarted": job.started_ms, "TimeCompleted": job.ended_ms,
               "Status": job.status})
    inst = ob.group("JobRequestInstance")
    op = ob.group("RequestedOperation", inst)
    ob.fields({"OperationName": job.command.operation, "GroupName": job.group}, op)
    if job.status == "FAILED_BEFORE_COMPLETION":
        exc = ob.group("ResponseException")
        ob.fields({"Message": job.message, "ReasonCode": job.code}, exc)
    results = ob.group("Results")
    for name, value in job.results().items():
        param = ob.group("JobParameter", results)
        ob.fields({"ParameterName": name, "ParameterValue": value}, param)
    ob.add("Progress", "100" if job.done else "0")
    return Entry(str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, href)), "JobResponse", href,
                 WEB_TYPE.format("JobResponse"), ob.xml())


def error_response(status: int, reason: str, err: LpmlabError, uri: str) -> Entry:
    """The HMC's HttpErrorResponse: pypowervm shows its Message, Ansible's modules read
    ``//Message``."""
    ob = ObjectBuilder(WEB, "HttpErrorResponse")
    text = err.render().replace("\n", " ")
    ob.fields({"HTTPStatus": status, "RequestURI": uri, "ReasonCode": reason,
               "Message": text, "ErrorCode": err.code})
    return Entry(str(uuidlib.uuid4()), "HttpErrorResponse", uri,
                 WEB_TYPE.format("HttpErrorResponse"), ob.xml())
