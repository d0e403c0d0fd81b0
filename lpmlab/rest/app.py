"""The HMC's REST API as an ASGI application (Starlette): the URLs pypowervm and IBM's
Ansible collection use, over the same HMC core the commands use.

Every request but logon carries ``X-API-Session``. Every failure is an HttpErrorResponse
with the HTTP status of its code's class and the code's text (never a traceback); a request
that fails changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lpmlab import codes
from lpmlab.errors import (
    AccessError,
    LabNotRunningError,
    LpmlabError,
    MigrationError,
    NotFoundError,
    UsageError,
)
from lpmlab.rest import atom, jobs, model, operations, uom, web
from lpmlab.rest.jobs import JobBoard
from lpmlab.rest.sessions import SessionStore

_log = structlog.get_logger("lpmlab.rest")

ATOM_XML = "application/atom+xml"
API = "/rest/api"


@dataclass
class Api:
    """What the handlers share: the HMC they speak as, its sessions and jobs."""

    hmc: str
    lab_dir: Path | None
    sessions: SessionStore
    jobs: JobBoard

    def survey(self, *, rmc: bool = True) -> model.Survey:
        from lpmlab.hmc.system import Hmc

        hmc = Hmc.open(self.lab_dir, console=self.hmc)
        try:
            return model.survey(hmc, rmc=rmc)
        finally:
            hmc.close()


# -- responses ---------------------------------------------------------------------------------
def atom_response(body: str, *, etag: str | None = None, status: int = 200) -> Response:
    headers = {"ETag": etag} if etag else {}
    return Response(body, status_code=status, media_type=ATOM_XML, headers=headers)


def entry_response(request: Request, entry: atom.Entry) -> Response:
    if request.headers.get("if-none-match") == entry.etag:
        return Response(status_code=304, headers={"ETag": entry.etag})
    return atom_response(entry.xml(), etag=entry.etag)


def feed_response(request: Request, entries: list[atom.Entry], title: str) -> Response:
    if not entries:
        return Response(status_code=204)  # the HMC answers an empty feed so
    etag = atom.feed_etag(entries)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return atom_response(atom.feed(entries, href=str(request.url), title=title), etag=etag)


def json_response(doc: Any) -> Response:
    return Response(json.dumps(doc), media_type="application/json")


STATUS_OF: dict[type[LpmlabError], tuple[int, str]] = {
    AccessError: (401, "Unauthorized"),
    NotFoundError: (404, "Not Found"),
    UsageError: (400, "Bad Request"),
    MigrationError: (409, "Conflict"),
    LabNotRunningError: (503, "Service Unavailable"),
}


def error_response(request: Request, err: LpmlabError) -> Response:
    status, reason = next((v for cls, v in STATUS_OF.items() if isinstance(err, cls)),
                          (500, "Internal Server Error"))
    with contextlib.suppress(KeyError):
        if own := codes.spec(err.code).http_status:
            status, reason = own, HTTPStatus(own).phrase
    entry = web.error_response(status, reason, err, request.url.path)
    return Response(entry.xml(), status_code=status, media_type=ATOM_XML)


# -- handlers ----------------------------------------------------------------------------------
Handler = Callable[[Api, Request], Response]


def handler(api: Api, fn: Handler, *, session: bool = True) -> Callable[[Request], Any]:
    """A route's endpoint: the session checked, the body read, errors answered the HMC's
    way. The work runs in a worker thread (the HMC core blocks)."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > atom.MAX_BODY:
                raise codes.error("HSCLR400", what="request", detail=f"a body of {length} "
                                  f"bytes (at most {atom.MAX_BODY} are taken)")
            body = await request.body()
            request.state.body = body
            if session:
                request.state.session = api.sessions.check(request.headers.get("x-api-session"))
            return await run_in_threadpool(fn, api, request)
        except LpmlabError as exc:
            _log.info("refused", method=request.method, path=request.url.path, code=exc.code)
            return error_response(request, exc)
        except Exception as exc:  # never a traceback to the client: the log has it
            _log.exception("internal error", method=request.method, path=request.url.path)
            return error_response(request, LpmlabError(
                f"the HMC's REST API failed on {request.method} {request.url.path}: "
                f"{type(exc).__name__}", fix="see the HMC's rest.log ('lpmlab lab status')"))

    return endpoint


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _document(request: Request, root: str) -> Any:
    """The request's body as the ``root`` document; HSCLR400 when it is not one."""
    try:
        return atom.parse(request.state.body, root)
    except atom.BadDocument as exc:
        raise codes.error("HSCLR400", what=root, detail=str(exc)) from None


def logon(api: Api, request: Request) -> Response:
    doc = _document(request, "LogonRequest")
    user = atom.child_text(doc, "UserID")
    password = atom.child_text(doc, "Password")
    if not user:
        raise codes.error("HSCLR400", what="LogonRequest", detail="it names no UserID")
    client = request.client.host if request.client else ""
    s = api.sessions.logon(user, password or "", client)
    _log.info("logon", user=user, client=client)
    return Response(web.logon_response(s.token), media_type=web.WEB_TYPE.format(
        "LogonResponse"))


def logoff(api: Api, request: Request) -> Response:
    api.sessions.logoff(request.headers.get("x-api-session"))
    return Response(status_code=204)


def _system(api: Api, survey: model.Survey, request: Request) -> model.SystemView:
    uuid = request.path_params["system"]
    s = survey.system(uuid)
    if s is None:
        raise codes.error("HSCLR404", obj=api.hmc, kind="ManagedSystem", uuid=uuid)
    return s


def systems(api: Api, request: Request) -> Response:
    survey = api.survey(rmc=False)
    base = base_url(request)
    return feed_response(request, [uom.managed_system(
        s, survey.partitions_of(s, vios=True), base) for s in survey.systems], "ManagedSystem")


def system(api: Api, request: Request) -> Response:
    survey = api.survey(rmc=False)
    s = _system(api, survey, request)
    return entry_response(request, uom.managed_system(s, survey.partitions_of(s, vios=True),
                                                      base_url(request)))


def system_quick(api: Api, request: Request) -> Response:
    survey = api.survey(rmc=False)
    return json_response(uom.quick_system(_system(api, survey, request)))


SEARCH = re.compile(r"\((\w+)(==|!=)'?([^')]*)'?\)")


def _search(request: Request, allowed: tuple[str, ...]) -> tuple[str, str, str]:
    expr = request.path_params["expr"]
    m = SEARCH.fullmatch(expr)
    if m is None or m.group(1) not in allowed:
        raise codes.error("HSCLR407", obj="search", detail=f"{expr!r} is not a search this "
                          "HMC answers", fix=f"search with ({allowed[0]}=='VALUE')")
    return m.group(1), m.group(2), m.group(3)


def system_search(api: Api, request: Request) -> Response:
    _key, op, value = _search(request, ("SystemName",))
    survey = api.survey(rmc=False)
    found = [s for s in survey.systems if (s.name == value) == (op == "==")]
    base = base_url(request)
    return feed_response(request, [uom.managed_system(s, survey.partitions_of(s, vios=True),
                                                      base) for s in found], "ManagedSystem")


def _partitions(api: Api, request: Request, vios: bool) -> Response:
    survey = api.survey()
    s = _system(api, survey, request) if "system" in request.path_params else None
    base = base_url(request)
    return feed_response(request, [uom.partition(p, base)
                                   for p in survey.partitions_of(s, vios=vios)],
                         model.object_type(vios=vios))


def _partition_named(api: Api, request: Request, vios: bool) -> model.PartitionView:
    """The partition (or VIOS) of the URL, under the URL's system when it names one;
    HSCLR404 when there is none such."""
    survey = api.survey()
    s = _system(api, survey, request) if "system" in request.path_params else None
    uuid = request.path_params["partition"]
    p = survey.partition(uuid, vios=vios)
    if p is None or (s is not None and p.system.uuid != s.uuid):
        raise codes.error("HSCLR404", obj=api.hmc, kind=model.object_type(vios=vios),
                          uuid=uuid)
    return p


def _partition(api: Api, request: Request, vios: bool) -> Response:
    return entry_response(request, uom.partition(_partition_named(api, request, vios),
                                                 base_url(request)))


def _partitions_quick(api: Api, request: Request, vios: bool) -> Response:
    survey = api.survey()
    s = _system(api, survey, request)
    return json_response([uom.quick_partition(p) for p in survey.partitions_of(s, vios=vios)])


def _partition_quick(api: Api, request: Request, vios: bool) -> Response:
    return json_response(uom.quick_partition(_partition_named(api, request, vios)))


def _partition_search(api: Api, request: Request, vios: bool) -> Response:
    key, op, value = _search(request, ("PartitionName", "PartitionID"))
    survey = api.survey()

    def hit(p: model.PartitionView) -> bool:
        have = p.name if key == "PartitionName" else str(p.record["lpar_id"])
        return (have == value) == (op == "==")

    base = base_url(request)
    return feed_response(request, [uom.partition(p, base)
                                   for p in survey.partitions_of(None, vios=vios) if hit(p)],
                         model.object_type(vios=vios))


def _target(api: Api, survey: model.Survey, request: Request) -> model.PartitionView:
    group, uuid = request.path_params["group"], request.path_params["partition"]
    if group not in ("LogicalPartition", "VirtualIOServer"):
        raise codes.error("HSCLR411", obj=api.hmc, path=request.url.path)
    p = survey.partition(uuid, vios=group == "VirtualIOServer")
    if p is None:
        raise codes.error("HSCLR404", obj=api.hmc, kind=group, uuid=uuid)
    return p


def job_template(api: Api, request: Request) -> Response:
    group, op = request.path_params["group"], request.path_params["operation"]
    _target(api, api.survey(rmc=False), request)
    operations.kind(group, op)
    return entry_response(request, web.job_template(group, op, str(request.url)))


def job_submit(api: Api, request: Request) -> Response:
    group, op = request.path_params["group"], request.path_params["operation"]
    survey = api.survey(rmc=False)
    p = _target(api, survey, request)
    operations.kind(group, op)
    doc = _document(request, "JobRequest")
    named = atom.child_text(next(iter(atom.children(doc, "RequestedOperation")), doc),
                            "OperationName")
    if named and named != op:
        raise codes.error("HSCLR400", what="JobRequest",
                          detail=f"its OperationName {named} is not the URL's {op}")
    params: dict[str, str] = {}
    for holder in atom.children(doc, "JobParameters"):
        for param in atom.children(holder, "JobParameter"):
            name = atom.child_text(param, "ParameterName")
            if not name:
                raise codes.error("HSCLR400", what="JobRequest",
                                  detail="a JobParameter has no ParameterName")
            if name in params:
                raise codes.error("HSCLR407", obj=op, detail=f"{name} is given twice",
                                  fix="give each parameter once")
            params[name] = atom.child_text(param, "ParameterValue") or ""
    command = operations.command(group, op, p, params, survey)
    job = api.jobs.submit(command, group, p.uuid, request.state.session.user)
    job.ended.wait(jobs.START_WAIT_S)
    href = f"{base_url(request)}{API}/uom/jobs/{job.id}"
    return atom_response(web.job_response(job, href).xml())


def job_status(api: Api, request: Request) -> Response:
    job = api.jobs.get(request.path_params["job"])
    job.ended.wait(jobs.POLL_HOLD_S)
    return atom_response(web.job_response(job, str(request.url)).xml())


def job_delete(api: Api, request: Request) -> Response:
    api.jobs.delete(request.path_params["job"])
    return Response(status_code=204)


def job_cancel(api: Api, request: Request) -> Response:
    api.jobs.cancel(request.path_params["job"])
    return Response(status_code=204)


# -- the application ---------------------------------------------------------------------------
def create_app(api: Api) -> Starlette:
    def r(path: str, fn: Handler, methods: list[str], *, session: bool = True) -> Route:
        return Route(API + path, handler(api, fn, session=session), methods=methods)

    def part(fn: Callable[[Api, Request, bool], Response], vios: bool) -> Handler:
        return lambda a, req: fn(a, req, vios)

    routes = [r("/web/Logon", logon, ["PUT"], session=False),
              r("/web/Logon", logoff, ["DELETE"], session=False),
              r("/uom/ManagedSystem", systems, ["GET"]),
              r("/uom/ManagedSystem/search/{expr}", system_search, ["GET"]),
              r("/uom/ManagedSystem/{system}", system, ["GET"]),
              r("/uom/ManagedSystem/{system}/quick", system_quick, ["GET"])]
    for kind, vios in (("LogicalPartition", False), ("VirtualIOServer", True)):
        routes += [
            r(f"/uom/ManagedSystem/{{system}}/{kind}", part(_partitions, vios), ["GET"]),
            r(f"/uom/ManagedSystem/{{system}}/{kind}/quick/All",
              part(_partitions_quick, vios), ["GET"]),
            r(f"/uom/ManagedSystem/{{system}}/{kind}/{{partition}}", part(_partition, vios),
              ["GET"]),
            r(f"/uom/{kind}", part(_partitions, vios), ["GET"]),
            r(f"/uom/{kind}/search/{{expr}}", part(_partition_search, vios), ["GET"]),
            r(f"/uom/{kind}/{{partition}}", part(_partition, vios), ["GET"]),
            r(f"/uom/{kind}/{{partition}}/quick", part(_partition_quick, vios), ["GET"])]
    routes += [r("/uom/{group}/{partition}/do/{operation}", job_template, ["GET"]),
               r("/uom/{group}/{partition}/do/{operation}", job_submit, ["PUT"]),
               r("/uom/jobs/{job}", job_status, ["GET"]),
               r("/uom/jobs/{job}", job_delete, ["DELETE"]),
               r("/uom/jobs/{job}/cancel", job_cancel, ["POST"])]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(request, codes.error("HSCLR411", obj=api.hmc,
                                                   path=request.url.path))

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
        return error_response(request, codes.error(
            "HSCLR405", method=request.method, path=request.url.path,
            allowed=allowed or "another method"))

    return Starlette(routes=routes,
                     exception_handlers={404: not_found, 405: method_not_allowed})
