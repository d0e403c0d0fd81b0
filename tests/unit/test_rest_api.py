"""The HMC REST API served over real HTTPS (uvicorn, the lab CA's certificate) to the real
pypowervm, with the lab replaced at the survey and command-runner boundary: a fixed survey
of two managed systems, and a runner that records each command line and answers as the
command would (tests/integration/test_rest_api.py runs the same against the real lab)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pypowervm import adapter as pvm_adapter
from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import migration as pvm_migration
from pypowervm.tasks import power as pvm_power
from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import managed_system as pvm_ms
from pypowervm.wrappers import virtual_io_server as pvm_vios

from lpmlab.fabric import ca
from lpmlab.hmc.validation import FrameState, PartitionState
from lpmlab.rest import app as rest_app
from lpmlab.rest import model
from lpmlab.rest.jobs import JobBoard
from lpmlab.rest.sessions import SessionStore
from tests.pvm import sessions_logged_off  # noqa: F401 - autouse fixture

PASSWORD = "abc123lab"
SYS1, SYS2 = "0b5e1f28-0000-4000-8000-000000000001", "0b5e1f28-0000-4000-8000-000000000002"
LPAR1, VIOS1 = "9d2c3e40-0000-4000-8000-0000000000a1", "9d2c3e40-0000-4000-8000-0000000000b1"


def frame(name: str, uuid: str) -> tuple[dict, FrameState]:
    rec = {"name": name, "type_model": "9009-42A", "serial_num": f"LPM000{name[-1]}",
           "ipaddr": f"198.18.0.1{name[-1]}", "state": "Operating",
           "active_lpar_mobility_capable": 1, "inactive_lpar_mobility_capable": 1,
           "lpar_proc_compat_modes": ["default", "POWER8", "POWER9", "POWER10"],
           "max_lpars": 1000, "curr_sys_proc_units": 8, "installed_sys_mem": 8192,
           "curr_avail_sys_mem": 7680, "mem_region_size": 256, "battery_power": 0,
           "num_active_migrations_supported": 16, "num_active_migrations_in_progress": 0,
           "uuid": uuid}
    facts = FrameState(name, uuid, True, True, False, 256, 8192, 7680, 8, 7,
                       ("default", "POWER8", "POWER9", "POWER10"), 16, 16, 0, 0,
                       "pseries-10.0", "10.0.2", {"DefaultPool": 7.0}, frozenset(),
                       frozenset())
    return rec, facts


def fake_survey() -> model.Survey:
    survey = model.Survey("hmc1")
    for name, uuid in (("sys1", SYS1), ("sys2", SYS2)):
        rec, facts = frame(name, uuid)
        survey.systems.append(model.SystemView(uuid, name, rec, facts,
                                               {"active": 0, "inactive": 0}))
    sys1 = survey.systems[0]
    lpar = {"name": "lpar1", "lpar_id": 3, "lpar_env": "aixlinux", "state": "Running",
            "curr_lpar_proc_compat_mode": "default", "curr_profile": "default_profile",
            "msp": 0, "time_ref": 0, "migration_disabled": 0, "rmc_state": "active",
            "uuid": LPAR1, "os_version": "Linux/Debian 6.1", "rmc_ipaddr": "198.18.0.31"}
    facts = PartitionState("lpar1", 3, "sys1", "running", 512, 1, "default", True, False,
                           False, ("lpar1.img",), 1, 512, 256, 1024, 1, 1, 2, uuid=LPAR1)
    survey.partitions.append(model.PartitionView(LPAR1, "lpar1", sys1, lpar, facts,
                                                 "Not Migrating", "00000000"))
    vios = {"name": "vios1", "lpar_id": 1, "lpar_env": "vioserver", "state": "Running",
            "curr_lpar_proc_compat_mode": "default", "msp": 1, "time_ref": 1,
            "rmc_state": "active", "migration_disabled": 1, "uuid": VIOS1,
            "os_version": "VIOS lpmlab", "rmc_ipaddr": "198.18.0.21"}
    survey.partitions.append(model.PartitionView(VIOS1, "vios1", sys1, vios, None,
                                                 "Not Migrating"))
    return survey


@dataclass
class FakeCommands:
    """Answers as the HMC commands would; ``fail`` maps an argv[2] (-o value) to an error."""

    ran: list[list[str]] = field(default_factory=list)
    fail: dict[str, dict] = field(default_factory=dict)
    hold: threading.Event = field(default_factory=threading.Event)
    interrupted: list[dict] = field(default_factory=list)

    def __call__(self, argv, user, on_start):
        self.ran.append(list(argv))
        on_start(self.interrupted.append)
        op = argv[argv.index("-o") + 1]
        if op == "m" and not self.hold.wait(10):
            raise AssertionError("the test never released the migration")
        err = self.fail.get(op)
        if err is not None:
            doc = {"operation": op, "partitions": [{"name": "lpar1", "ok": False,
                                                    "error": err}], "exit_code": 11}
            return err.get("exit_code", 11), json.dumps(doc), f"{err['code']} {err['message']}"
        return 0, json.dumps({"operation": op, "partitions": [{"name": "lpar1", "ok": True}],
                              "exit_code": 0}), ""


@pytest.fixture
def commands() -> FakeCommands:
    c = FakeCommands()
    c.hold.set()
    return c


@pytest.fixture
def rest(tmp_path: Path, commands: FakeCommands, monkeypatch) -> Iterator[dict]:
    import uvicorn

    authority = ca.ensure_ca(tmp_path / "ca", "unit")
    cert = ca.ensure_server_cert(authority, tmp_path / "hmc1", "localhost", ["127.0.0.1"])
    (tmp_path / "password").write_text(PASSWORD + "\n")
    api = rest_app.Api("hmc1", None, SessionStore("hmc1", "hscroot", tmp_path / "password"),
                       JobBoard("hmc1", commands))
    monkeypatch.setattr(rest_app.Api, "survey", lambda self, rmc=True: fake_survey())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(rest_app.create_app(api), ssl_certfile=str(cert.cert),
                            ssl_keyfile=str(cert.key), log_level="warning")
    server = uvicorn.Server(config)
    t = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                         daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    # requests (under pypowervm) checks the certificate against this CA, by host name
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.cert))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(authority.cert))
    yield {"port": port, "api": api, "ca": authority.cert}
    server.should_exit = server.force_exit = True  # no wait for idle keep-alive clients
    t.join(10)


def session(rest: dict, password: str = PASSWORD) -> pvm_adapter.Adapter:
    s = pvm_adapter.Session("localhost", "hscroot", password, port=rest["port"],
                            certpath=None)
    return pvm_adapter.Adapter(s)


def raw(rest: dict, method: str, path: str, body: bytes | None = None,
        token: str | bytes | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(rest["ca"]))
    req = urllib.request.Request(f"https://localhost:{rest['port']}{path}", data=body,
                                 method=method)
    if token:
        req.add_header("X-API-Session", token.decode() if isinstance(token, bytes) else token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- logon -------------------------------------------------------------------------------------
def test_pypowervm_logs_on_and_reads_systems_partitions_and_vios(rest):
    adpt = session(rest)
    systems = pvm_ms.System.get(adpt)
    assert [s.system_name for s in systems] == ["sys1", "sys2"]
    s1 = systems[0]
    assert (s1.uuid, s1.system_state, s1.mtms.mtms_str) == (SYS1, "operating",
                                                            "9009-42A*LPM0001")
    assert s1.get_capability("active_lpar_mobility_capable") is True
    assert s1.proc_compat_modes == ("default", "POWER8", "POWER9", "POWER10")
    assert (s1.memory_total, s1.memory_free, s1.proc_units, s1.proc_units_avail) == \
        (8192, 7680, 8.0, 7.0)
    assert s1.migration_data["active_migrations_supported"] == 16
    assert len(s1.vios_links) == 1
    lpars = pvm_lpar.LPAR.get(adpt, parent=s1)
    assert [(p.name, p.id, p.state, p.rmc_state, p.uuid) for p in lpars] == \
        [("lpar1", 3, "running", "active", LPAR1)]
    p = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    assert (p.mem_config.desired, p.mem_config.current, p.mem_config.max) == (512, 512, 1024)
    assert p.proc_config.shared_proc_cfg.desired_virtual == 1
    assert (p.proc_compat_mode, p.migration_state, p.assoc_sys_uuid) == \
        ("default", "Not_Migrating", SYS1)
    assert p.can_lpm(s1) == (True, None)
    vios = pvm_vios.VIOS.get(adpt, parent=s1)
    assert [(v.name, v.is_mover_service_partition, v.env) for v in vios] == \
        [("vios1", True, "Virtual IO Server")]
    assert vios[0]._get_val_bool("IsTimeReferencePartition") is True
    assert pvm_ms.System.get(adpt, uuid=SYS2).system_name == "sys2"
    assert pvm_vios.VIOS.get(adpt, parent=systems[1]) == []  # the HMC's 204


def test_a_wrong_password_or_user_is_refused_with_the_hmc_error_document(rest):
    with pytest.raises(pvm_exc.HttpUnauth) as err:
        session(rest, password="wrong")
    assert "HSCLR401" in str(err.value) and err.value.her_wrap.status == 401
    status, body = raw(rest, "PUT", "/rest/api/web/Logon",
                       b"<LogonRequest xmlns='http://www.ibm.com/xmlns/systems/power/firmware"
                       b"/web/mc/2012_10/'><UserID>root</UserID><Password>"
                       + PASSWORD.encode() + b"</Password></LogonRequest>")
    assert status == 401 and "HSCLR401" in body
    assert rest["api"].sessions.count() == 0


@pytest.mark.parametrize("token", [None, "not-a-session"])
def test_a_request_without_a_valid_session_is_401(rest, token):
    status, body = raw(rest, "GET", "/rest/api/uom/ManagedSystem", token=token)
    assert status == 401 and "HSCLR402" in body and "<Message>" in body


def test_an_ended_session_is_logged_on_again_by_pypowervm(rest):
    adpt = session(rest)
    first = adpt.session._sessToken
    assert rest["api"].sessions.logoff(first.decode() if isinstance(first, bytes) else first)
    assert pvm_ms.System.get(adpt)[0].system_name == "sys1"  # 401, logon, retry
    assert adpt.session._sessToken != first


@pytest.mark.parametrize("body, words", [
    (b"<LogonRequest><UserID>hscroot", "not well-formed"),
    (b"<Other/>", "root element is Other"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><LogonRequest/>', "DTD"),
    (b"<LogonRequest><Password>x</Password></LogonRequest>", "no UserID"),
    (b"<LogonRequest>" + b" " * 300_000 + b"</LogonRequest>", "at most 262144"),
])
def test_a_malformed_logon_is_400(rest, body, words):
    status, text = raw(rest, "PUT", "/rest/api/web/Logon", body)
    assert status == 400 and "HSCLR400" in text and words in text


# -- objects and URLs --------------------------------------------------------------------------
def test_unknown_uuids_and_urls_are_404_and_wrong_methods_405(rest):
    adpt = session(rest)
    with pytest.raises(pvm_exc.HttpNotFound) as err:
        pvm_lpar.LPAR.get(adpt, uuid="00000000-0000-4000-8000-000000000000")
    assert "HSCLR404" in str(err.value)
    token = adpt.session._sessToken
    assert raw(rest, "GET", "/rest/api/uom/Cluster", token=token)[0] == 404
    status, body = raw(rest, "POST", "/rest/api/uom/ManagedSystem", b"<x/>", token=token)
    assert status == 405 and "HSCLR405" in body


def test_searches_answer_as_the_hmc_does(rest):
    adpt = session(rest)
    assert [p.name for p in pvm_lpar.LPAR.search(adpt, name="lpar1")] == ["lpar1"]
    assert pvm_lpar.LPAR.search(adpt, name="nope") == []
    token = adpt.session._sessToken
    status, body = raw(rest, "GET", "/rest/api/uom/ManagedSystem/search/(SystemName=='sys2')",
                       token=token)
    assert status == 200 and SYS2 in body and "<DetailedState>None</DetailedState>" in body
    assert raw(rest, "GET", "/rest/api/uom/ManagedSystem/search/(SystemName=='x')",
               token=token)[0] == 204


def test_quick_json_is_what_ibm_ansible_modules_read(rest):
    adpt = session(rest)  # kept: pypowervm logs off when its Session is collected
    token = adpt.session._sessToken
    status, body = raw(rest, "GET", f"/rest/api/uom/ManagedSystem/{SYS1}/quick", token=token)
    assert status == 200 and json.loads(body)["SystemName"] == "sys1"
    status, body = raw(rest, "GET",
                       f"/rest/api/uom/ManagedSystem/{SYS1}/LogicalPartition/quick/All",
                       token=token)
    assert [(p["PartitionName"], p["UUID"], p["PartitionID"]) for p in json.loads(body)] == \
        [("lpar1", LPAR1, 3)]
    status, body = raw(rest, "GET",
                       f"/rest/api/uom/ManagedSystem/{SYS2}/LogicalPartition/quick/All",
                       token=token)
    assert (status, json.loads(body)) == (200, [])


# -- jobs --------------------------------------------------------------------------------------
def test_pypowervm_validates_migrates_recovers_and_stops_through_migrlpar(rest, commands):
    adpt = session(rest)
    lpar = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    pvm_migration.migrate_lpar(lpar, "sys2", validate_only=True, dest_msp_name="198.19.0.22",
                               source_msp_name="198.19.0.21")
    pvm_migration.migrate_lpar(lpar, "sys2")
    pvm_migration.migrate_recover(lpar, force=True)
    pvm_migration.migrate_abort(lpar)
    assert commands.ran == [
        ["migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "--json", "-i",
         "source_msp_ipaddr=198.19.0.21,dest_msp_ipaddr=198.19.0.22"],
        ["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "--json"],
        ["migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "--json", "--force"],
        ["migrlpar", "-o", "s", "-m", "sys1", "-p", "lpar1", "--json"]]


def test_a_refused_validation_fails_the_job_with_the_cli_code_and_fix(rest, commands):
    commands.fail["v"] = {"code": "HSCLL521", "message": "partition lpar1 has 3 MiB free",
                          "fix": "free memory on sys2", "exit_code": 11}
    lpar = pvm_lpar.LPAR.get(session(rest), uuid=LPAR1)
    with pytest.raises(pvm_exc.JobRequestFailed) as err:
        pvm_migration.migrate_lpar(lpar, "sys2", validate_only=True)
    assert "HSCLL521 partition lpar1 has 3 MiB free Fix: free memory on sys2" in str(err.value)


@pytest.mark.parametrize("kw, words", [
    ({"vlan_mappings": ["001122334455/12"]}, "VlanMappings cannot be honoured"),
    ({"check_affinity_score": True}, "Affinity=true"),
    ({"dest_msp_name": "vios2"}, "'vios2' is not an IPv4 address"),
])
def test_job_parameters_the_lab_cannot_honour_are_refused_before_anything_runs(
        rest, commands, kw, words):
    lpar = pvm_lpar.LPAR.get(session(rest), uuid=LPAR1)
    with pytest.raises(pvm_exc.JobRequestFailed) as err:
        pvm_migration.migrate_lpar(lpar, "sys2", **kw)
    assert "HSCLR407" in str(err.value) and words in str(err.value)
    assert commands.ran == []


def test_power_jobs_run_chsysstate(rest, commands):
    adpt = session(rest)
    lpar = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    pvm_power.power_on(lpar, None)
    pvm_power.PowerOp.stop(lpar)  # RMC active: osshutdown, immediate
    assert commands.ran == [
        ["chsysstate", "-m", "sys1", "-r", "lpar", "-o", "on", "-n", "lpar1", "--json"],
        ["chsysstate", "-m", "sys1", "-r", "lpar", "-o", "osshutdown", "-n", "lpar1",
         "--json"]]


def test_a_running_job_is_not_deleted_and_a_cancel_stops_the_migration(rest, commands):
    commands.hold.clear()
    adpt = session(rest)  # kept: pypowervm logs off when its Session is collected
    token = adpt.session._sessToken
    body = (b"<JobRequest xmlns='http://www.ibm.com/xmlns/systems/power/firmware/web/mc/"
            b"2012_10/'><RequestedOperation><OperationName>Migrate</OperationName>"
            b"<GroupName>LogicalPartition</GroupName></RequestedOperation><JobParameters>"
            b"<JobParameter><ParameterName>TargetManagedSystemName</ParameterName>"
            b"<ParameterValue>sys2</ParameterValue></JobParameter></JobParameters>"
            b"</JobRequest>")
    status, text = raw(rest, "PUT", f"/rest/api/uom/LogicalPartition/{LPAR1}/do/Migrate",
                       body, token=token)
    assert status == 200 and "<Status>RUNNING</Status>" in text
    job_id = text.split("<JobID>")[1].split("<")[0]
    status, text = raw(rest, "DELETE", f"/rest/api/uom/jobs/{job_id}", token=token)
    assert status == 409 and "HSCLR408" in text
    assert raw(rest, "POST", f"/rest/api/uom/jobs/{job_id}/cancel", b"", token=token)[0] == 204
    deadline = time.monotonic() + 5
    while ["migrlpar", "-o", "s", "-m", "sys1", "-p", "lpar1", "--json"] not in commands.ran:
        assert time.monotonic() < deadline, commands.ran
        time.sleep(0.05)
    commands.hold.set()
    deadline = time.monotonic() + 5
    while "COMPLETED_OK" not in raw(rest, "GET", f"/rest/api/uom/jobs/{job_id}",
                                    token=token)[1]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert raw(rest, "DELETE", f"/rest/api/uom/jobs/{job_id}", token=token)[0] == 204
    status, text = raw(rest, "GET", f"/rest/api/uom/jobs/{job_id}", token=token)
    assert status == 404 and "HSCLR410" in text


@pytest.mark.parametrize("path, body, status, code", [
    (f"/rest/api/uom/LogicalPartition/{LPAR1}/do/Explode", b"<JobRequest/>", 400, "HSCLR406"),
    (f"/rest/api/uom/LogicalPartition/{LPAR1}/do/Migrate", b"<JobRequest><", 400, "HSCLR400"),
    ("/rest/api/uom/LogicalPartition/00000000-0000-4000-8000-000000000000/do/Migrate",
     b"<JobRequest/>", 404, "HSCLR404"),
    (f"/rest/api/uom/LogicalPartition/{LPAR1}/do/Migrate", b"<JobRequest/>", 400, "HSCLR407"),
])
def test_bad_job_requests_are_refused_and_run_nothing(rest, commands, path, body, status,
                                                      code):
    adpt = session(rest)  # kept: pypowervm logs off when its Session is collected
    token = adpt.session._sessToken
    got, text = raw(rest, "PUT", path, body, token=token)
    assert (got, code in text) == (status, True), text
    assert commands.ran == []


@pytest.mark.parametrize("rc, stdout, stderr, status, code", [
    (0, '{"partitions": [{"ok": true}]}', "", "COMPLETED_OK", ""),
    # refused before acting: a validation check, an unknown object, bad input
    (11, '{"partitions": [{"ok": false, "error": {"code": "HSCLL521", "message": "m"}}]}', "",
     "FAILED_BEFORE_COMPLETION", "HSCLL521"),
    (4, '{"error": {"code": "HSCL8011", "message": "no sys9"}}', "", "FAILED_BEFORE_COMPLETION",
     "HSCL8011"),
    # failed while acting
    (11, '{"partitions": [{"ok": false, "error": {"code": "HSCLL455", "message": "m"}}]}', "",
     "COMPLETED_WITH_ERROR", "HSCLL455"),
    # the controller killed (a fault): no JSON at all
    (137, "", "", "COMPLETED_WITH_ERROR", ""),
])
def test_a_commands_end_is_the_jobs_status(rc, stdout, stderr, status, code):
    from lpmlab.rest.jobs import outcome_of

    got_status, got_code, message, _doc = outcome_of(rc, stdout, stderr)
    assert (got_status, got_code) == (status, code)
    assert message or status == "COMPLETED_OK"


def test_powering_on_a_running_partition_is_done_for_pypowervm_as_on_an_hmc(rest, commands):
    # lpmlab's HSCLL441 carries the HMC's HSCL3681 ("already running"), which pypowervm
    # takes as done; any other refusal still fails
    commands.fail["on"] = {"code": "HSCLL441", "message": "Partition lpar1 on sys1 is Running; "
                           "only a Not Activated partition can be activated.", "exit_code": 11}
    adpt = session(rest)
    lpar = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    pvm_power.power_on(lpar, None)
    commands.fail["on"]["message"] = ("Partition lpar1 on sys1 is Migrating - Running; only a "
                                      "Not Activated partition can be activated.")
    with pytest.raises(pvm_exc.VMPowerOnFailure, match="HSCLL441"):
        pvm_power.power_on(lpar, None)


def test_no_field_the_wrappers_read_is_missing(rest):
    """Every property a script reads of System, LPAR and VIOS has a value (an absent element
    reads as None or a default that says nothing)."""
    adpt = session(rest)
    s1 = pvm_ms.System.get(adpt, uuid=SYS1)
    system_props = ["system_name", "system_state", "host_ip_address", "proc_units",
                    "proc_units_avail", "proc_units_configurable", "min_proc_units",
                    "max_sys_procs_limit", "max_sys_vcpus_limit", "memory_total",
                    "memory_free", "memory_configurable", "memory_region_size",
                    "proc_compat_modes", "vios_links"]
    assert {p: getattr(s1, p) for p in system_props if getattr(s1, p) in (None, 0, ())} == {}
    assert s1.mtms.mtms_str and s1.highest_compat_mode() == 10
    assert {k: v for k, v in s1.migration_data.items() if v is None} == {}
    lpar = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    lpar_props = ["name", "id", "state", "env", "rmc_state", "rmc_ip", "operating_system",
                  "ref_code", "proc_compat_mode", "pending_proc_compat_mode", "assoc_sys_uuid",
                  "partition_uuid", "migration_state", "avail_priority", "keylock_pos"]
    assert {p: getattr(lpar, p) for p in lpar_props if getattr(lpar, p) in (None, "")} == {}
    mem, shared = lpar.mem_config, lpar.proc_config.shared_proc_cfg
    assert None not in (mem.desired, mem.min, mem.max, mem.current, shared.desired_units,
                        shared.min_units, shared.max_units, shared.desired_virtual,
                        shared.min_virtual, shared.max_virtual, shared.pool_id,
                        shared.uncapped_weight, lpar.proc_config.sharing_mode)
    assert (lpar.capabilities.io_dlpar, lpar.capabilities.mem_dlpar,
            lpar.capabilities.proc_dlpar) == (True, True, True)
    vios = pvm_vios.VIOS.get(adpt, uuid=VIOS1)
    assert (vios.name, vios.is_mover_service_partition, vios.is_license_accepted,
            vios.assoc_sys_uuid) == ("vios1", True, True, SYS1)


def test_jobs_run_side_by_side(rest, commands):
    """Two migrations at once are two commands at once (their limits are migrlpar's)."""
    commands.hold.clear()
    adpt = session(rest)
    lpar = pvm_lpar.LPAR.get(adpt, uuid=LPAR1)
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            pvm_migration.migrate_lpar(lpar, "sys2")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(rest["api"].jobs.running()) < 2:
        assert time.monotonic() < deadline, "the second job waited for the first"
        time.sleep(0.05)
    commands.hold.set()
    for t in threads:
        t.join(30)
    assert errors == [] and [a[2] for a in commands.ran] == ["m", "m"]
