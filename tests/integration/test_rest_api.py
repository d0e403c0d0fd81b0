"""The HMC's REST API on the real lab, driven by the real clients' code paths: pypowervm 1.1.27
unchanged (logon, wrappers, ``tasks.migration``) on port 12443, and the request sequence of
IBM's ``ibm.power_hmc`` facts modules on port 443, over TLS checked against the lab's CA."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from pypowervm import adapter as pvm_adapter
from pypowervm import exceptions as pvm_exc
from pypowervm.tasks import migration as pvm_migration
from pypowervm.wrappers import logical_partition as pvm_lpar
from pypowervm.wrappers import managed_system as pvm_ms
from pypowervm.wrappers import virtual_io_server as pvm_vios

from tests.pvm import sessions_logged_off  # noqa: F401 - autouse fixture

from .conftest import cli, placements
from .hmcssh import hmcs

pytestmark = pytest.mark.integration

WEB = "http://www.ibm.com/xmlns/systems/power/firmware/web/mc/2012_10/"


@pytest.fixture(scope="module")
def hmc1(lab) -> Iterator[dict]:
    h = hmcs()["hmc1"]
    assert h["rest_api"] == "running", h
    mp = pytest.MonkeyPatch()
    # requests (under pypowervm) checks the HMC's certificate against the lab's CA
    mp.setenv("REQUESTS_CA_BUNDLE", h["ca_file"])
    mp.setenv("CURL_CA_BUNDLE", h["ca_file"])
    yield h
    mp.undo()


def adapter(h: dict, password: str | None = None) -> pvm_adapter.Adapter:
    s = pvm_adapter.Session(h["address"], h["user"], password or h["password"], certpath=None)
    return pvm_adapter.Adapter(s)


def records(*argv: str) -> list[dict]:
    return json.loads(cli(*argv, "--json", check=True).stdout)


def lpar_named(adpt: pvm_adapter.Adapter, name: str) -> pvm_lpar.LPAR:
    found = pvm_lpar.LPAR.search(adpt, name=name)
    assert len(found) == 1, found
    return found[0]


def test_pypowervm_sees_what_lssyscfg_lists(hmc1):
    adpt = adapter(hmc1)
    systems = {s.system_name: s for s in pvm_ms.System.get(adpt)}
    sys_recs = records("lssyscfg", "-r", "sys")
    assert {r["name"]: (r["state"].lower(), r["uuid"], r["serial_num"]) for r in sys_recs} == \
        {n: (s.system_state, s.uuid, s.mtms.serial) for n, s in systems.items()}
    for name, s in systems.items():
        lpars = records("lssyscfg", "-r", "lpar", "-m", name)
        partitions = {p.name: p for p in pvm_lpar.LPAR.get(adpt, parent=s)}
        vios = {v.name: v for v in pvm_vios.VIOS.get(adpt, parent=s)}
        for r in lpars:
            w = vios[r["name"]] if r["lpar_env"] == "vioserver" else partitions[r["name"]]
            assert (w.id, w.uuid, w.state) == (int(r["lpar_id"]), r["uuid"],
                                              r["state"].lower()), r
            if r["lpar_env"] == "vioserver":
                assert w.is_mover_service_partition == bool(int(r["msp"]))
        assert len(partitions) + len(vios) == len(lpars)
    lpar1 = lpar_named(adpt, "lpar1")
    assert lpar1.can_lpm(systems["sys1"]) == (True, None)  # running, RMC active, DLPAR
    assert lpar1.mem_config.current > 0 and lpar1.migration_state == "Not_Migrating"


def test_a_wrong_password_is_refused(hmc1):
    with pytest.raises(pvm_exc.HttpUnauth) as err:
        adapter(hmc1, password="not-the-password")
    assert "HSCLR401" in str(err.value)


def test_a_job_on_a_partition_in_the_wrong_state_fails_with_the_cli_code(hmc1):
    adpt = adapter(hmc1)
    with pytest.raises(pvm_exc.JobRequestFailed) as err:
        pvm_migration.migrate_abort(lpar_named(adpt, "lpar1"))  # nothing to stop
    assert "HSCLL409" in str(err.value)
    assert placements() == [("sys1", "running")]


def test_validate_migrate_there_and_back_with_a_second_session_watching(hmc1):
    adpt, watcher = adapter(hmc1), adapter(hmc1)
    lpar = lpar_named(adpt, "lpar1")
    with pytest.raises(pvm_exc.JobRequestFailed) as err:
        pvm_migration.migrate_lpar(lpar, "sys9", validate_only=True)
    assert "HSCL8011" in str(err.value)  # the CLI's code and words, the REST way
    pvm_migration.migrate_lpar(lpar, "sys2", validate_only=True)
    assert placements() == [("sys1", "running")]

    seen: set[tuple[str, str]] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            w = lpar_named(watcher, "lpar1")
            seen.add((w.state, w.migration_state))
            time.sleep(0.5)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        pvm_migration.migrate_lpar(lpar, "sys2")
    finally:
        done.set()
        t.join(30)
    assert ("migrating running", "Migration_In_Progress") in seen, seen
    assert placements() == [("sys2", "running")]
    moved = lpar_named(adpt, "lpar1")
    assert (moved.uuid, moved.assoc_sys_uuid) == (
        lpar.uuid, next(s.uuid for s in pvm_ms.System.get(adpt) if s.system_name == "sys2"))
    pvm_migration.migrate_lpar(moved, "sys1")
    assert placements() == [("sys1", "running")]


def test_a_killed_controller_is_recovered_with_migrate_recover(hmc1):
    adpt = adapter(hmc1)
    lpar = lpar_named(adpt, "lpar1")
    cli("lpmlab", "fault", "controller-killed", "--when", "transferring", "-p", "lpar1",
        check=True)
    with pytest.raises(pvm_exc.JobRequestFailed):
        pvm_migration.migrate_lpar(lpar, "sys2")
    assert lpar_named(adpt, "lpar1").migration_state == "Migration_Recovery_Required"
    pvm_migration.migrate_recover(lpar_named(adpt, "lpar1"))
    where = placements()
    assert len(where) == 1 and where[0][1] == "running", where
    assert lpar_named(adpt, "lpar1").migration_state == "Not_Migrating"
    cli("lpmlab", "fault", "clear", check=True)
    if where[0][0] != "sys1":
        pvm_migration.migrate_lpar(lpar_named(adpt, "lpar1"), "sys1")


# -- IBM's Ansible collection (ibm.power_hmc) -------------------------------------------------
def ansible_call(h: dict, method: str, path: str, body: bytes | None = None,
                 token: str | None = None) -> tuple[int, bytes]:
    """As its hmc_rest_client does: https on the default port (443), no port option."""
    ctx = ssl.create_default_context(cafile=h["ca_file"])
    req = urllib.request.Request(f"https://{h['address']}{path}", data=body, method=method)
    req.add_header("Content-Type", "application/vnd.ibm.powervm.web+xml; type=LogonRequest")
    if token:
        req.add_header("X-API-Session", token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_ansible_facts_modules_requests_on_port_443(hmc1):
    import xml.etree.ElementTree as ET

    logon = (f'<LogonRequest schemaVersion="V1_0" xmlns="{WEB}" xmlns:mc="{WEB}"><UserID>'
             f'{hmc1["user"]}</UserID><Password>{hmc1["password"]}</Password>'
             "</LogonRequest>").encode()
    status, body = ansible_call(hmc1, "PUT", "/rest/api/web/Logon", logon)
    assert status == 200
    token = ET.fromstring(body).find(f"{{{WEB}}}X-API-Session").text
    # power_system / powervm_lpar_instance / vios: find the system, then its quick views
    status, body = ansible_call(hmc1, "GET",
                                "/rest/api/uom/ManagedSystem/search/(SystemName=='sys1')",
                                token=token)
    assert status == 200 and b"<DetailedState>None</DetailedState>" in body
    system_uuid = body.split(b"<AtomID>")[1].split(b"<")[0].decode()
    status, body = ansible_call(hmc1, "GET", f"/rest/api/uom/ManagedSystem/{system_uuid}/quick",
                                token=token)
    assert json.loads(body)["SystemName"] == "sys1"
    status, body = ansible_call(
        hmc1, "GET", f"/rest/api/uom/ManagedSystem/{system_uuid}/LogicalPartition/quick/All",
        token=token)
    assert "lpar1" in [p["PartitionName"] for p in json.loads(body)]
    status, body = ansible_call(
        hmc1, "GET", f"/rest/api/uom/ManagedSystem/{system_uuid}/VirtualIOServer/quick/All",
        token=token)
    vios = json.loads(body)
    assert vios and all(v["PartitionType"] == "Virtual IO Server" for v in vios)
    status, body = ansible_call(hmc1, "GET", f"/rest/api/uom/VirtualIOServer/{vios[0]['UUID']}",
                                token=token)
    for field in (b"<MaximumMemory>", b"<MinimumMemory>", b"<CurrentHasDedicatedProcessors>",
                  b"<MaximumProcessingUnits>", b"<MinimumVirtualProcessors>"):
        assert field in body, field
    # an unknown system is the HMC's 204; the session ends at logoff
    assert ansible_call(hmc1, "GET", "/rest/api/uom/ManagedSystem/search/(SystemName=='x')",
                        token=token)[0] == 204
    assert ansible_call(hmc1, "DELETE", "/rest/api/web/Logon", token=token)[0] == 204
    status, body = ansible_call(hmc1, "GET", "/rest/api/uom/ManagedSystem", token=token)
    assert status == 401 and b"<Message>HSCLR402" in body
