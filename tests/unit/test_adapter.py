"""The hypervisor adapter against libvirt's test driver, with fakes where it has no job calls."""

import threading
import time
import uuid
from pathlib import Path

import libvirt
import pytest

from lpmlab.adapter import connection as C
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as M
from lpmlab.errors import HypervisorError

TEST_URI = "test:///default"


def plain_xml(name):
    """A domain the test driver runs, with no lpmlab metadata (someone else's)."""
    return (f"<domain type='test'><name>{name}</name><memory unit='MiB'>128</memory>"
            "<os><type>hvm</type></os></domain>")


def lab_xml(name):
    """A lab partition as lpmlab renders it (carries the lpm:partition metadata)."""
    return dx.render_partition(dx.PartitionSpec(
        name=name, lpar_id=7, memory_mb=512, procs=1, kernel=Path("/k"), initrd=Path("/i"),
        cmdline="console=hvc0", mac="52:54:00:4c:50:77", bridge="sea0",
        console_log=Path("/tmp/lpmlab-test-console.log"),
        disk=dx.IscsiDisk("198.18.0.21", "iqn.x:lpar", vios="vios1")))


def lv_error(msg):
    """A libvirtError with this message (libvirt-python otherwise takes the thread's last one)."""
    libvirt.virResetLastError()
    return libvirt.libvirtError(msg)


class JobDomain:
    """A test-driver domain plus the job calls the test driver does not implement."""

    def __init__(self, dom, job_type=libvirt.VIR_DOMAIN_JOB_NONE):
        self._dom = dom
        self.job_type = job_type

    def jobInfo(self):
        return [self.job_type] + [0] * 11

    def __getattr__(self, name):
        return getattr(self._dom, name)


class JobConn:
    """The test-driver connection, handing out domains that answer jobInfo."""

    def __init__(self, conn):
        self._conn = conn

    def listAllDomains(self, flags=0):
        return [JobDomain(d) for d in self._conn.listAllDomains(flags)]

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.fixture
def names():
    return {k: f"lpmlab-t-{k}-{uuid.uuid4().hex[:6]}" for k in ("lab", "plain", "other")}


@pytest.fixture
def frame(names):
    """A FrameConnection to the test driver; every domain the test made is removed after."""
    fc = C.FrameConnection("sys1", TEST_URI, connect_timeout=2)
    yield fc
    conn = libvirt.open(TEST_URI)
    for name in names.values():
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        persistent = dom.isPersistent()
        if dom.isActive():
            dom.destroy()
        if persistent:
            dom.undefine()
    conn.close()
    fc.close()


# -- FrameConnection ------------------------------------------------------------------------

def test_lab_domains_lists_only_domains_with_lpmlab_metadata(frame, names):
    frame.conn.defineXML(lab_xml(names["lab"]))
    frame.conn.defineXML(plain_xml(names["plain"]))
    all_names = {d.name() for d in frame.domains()}
    assert {names["lab"], names["plain"]} <= all_names
    lab = frame.lab_domains()
    assert [d.name for d in lab] == [names["lab"]]
    info = lab[0]
    assert info.metadata["lpar_id"] == "7"
    assert info.metadata["vios"] == "vios1"
    assert info.state == "shutoff"
    assert info.persistent
    assert info.job_active is False


def test_lab_domains_includes_running_lab_domains(frame, names):
    frame.conn.defineXML(lab_xml(names["lab"])).create()
    frame.conn.createXML(plain_xml(names["plain"]), 0)
    frame._conn = JobConn(frame.conn)  # the test driver has no jobInfo
    lab = {d.name: d for d in frame.lab_domains()}
    assert set(lab) == {names["lab"]}
    assert lab[names["lab"]].state == "running"


def test_running_lab_domain_is_not_hidden_when_job_info_fails(frame, names):
    frame.conn.defineXML(lab_xml(names["lab"])).create()
    assert names["lab"] in [d.name for d in frame.lab_domains()]


def test_info_maps_real_states(frame, names):
    dom = frame.conn.defineXML(lab_xml(names["lab"]))
    assert frame.info(JobDomain(dom)).state == "shutoff"
    dom.create()
    assert frame.info(JobDomain(dom)).state == "running"
    dom.suspend()
    assert frame.info(JobDomain(dom)).state == "paused"
    dom.resume()
    busy = frame.info(JobDomain(dom, libvirt.VIR_DOMAIN_JOB_UNBOUNDED))
    assert busy.job_active is True
    assert frame.info(JobDomain(dom)).job_active is False


def test_info_of_a_transient_domain(frame, names):
    dom = frame.conn.createXML(lab_xml(names["other"]), 0)
    info = frame.info(JobDomain(dom))
    assert info.persistent is False
    assert info.uuid == dom.UUIDString()


class StateDomain:
    """A domain in any libvirt state (the test driver cannot reach them all)."""

    def __init__(self, state, reason=0):
        self._state = state
        self._reason = reason

    def state(self):
        return [self._state, self._reason]

    def XMLDesc(self, _flags=0):
        return plain_xml("fake")

    def metadata(self, _type, _uri, _flags=0):
        err = lv_error("metadata not found")
        err.err = (libvirt.VIR_ERR_NO_DOMAIN_METADATA, 0, "metadata not found", 0)
        raise err

    def isActive(self):
        return self._state != libvirt.VIR_DOMAIN_SHUTOFF

    def jobInfo(self):
        return [libvirt.VIR_DOMAIN_JOB_NONE] + [0] * 11

    def name(self):
        return "fake"

    def UUIDString(self):
        return "00000000-0000-4000-8000-000000000001"

    def isPersistent(self):
        return 1


@pytest.mark.parametrize("state, name", [
    (libvirt.VIR_DOMAIN_RUNNING, "running"),
    (libvirt.VIR_DOMAIN_BLOCKED, "running"),
    (libvirt.VIR_DOMAIN_PAUSED, "paused"),
    (libvirt.VIR_DOMAIN_SHUTDOWN, "shutdown"),
    (libvirt.VIR_DOMAIN_SHUTOFF, "shutoff"),
    (libvirt.VIR_DOMAIN_CRASHED, "crashed"),
    (libvirt.VIR_DOMAIN_PMSUSPENDED, "pmsuspended"),
    (99, "other"),
])
def test_info_state_names(frame, state, name):
    info = frame.info(StateDomain(state))
    assert info.state == name
    assert info.metadata == {}


@pytest.mark.parametrize("state, reason, phase", [
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY, "active"),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY, "active"),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED, "failed"),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED, "failed"),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, None),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED, None),
])
def test_info_tells_each_side_of_a_postcopy(frame, state, reason, phase):
    assert frame.info(StateDomain(state, reason)).postcopy == phase
    assert M.postcopy_phase(StateDomain(state, reason)) == phase


class BootDomain:
    """A copy to boot again: records what was done to it."""

    def __init__(self, persistent):
        self.persistent, self.active, self.calls = persistent, True, []

    def isPersistent(self):
        return self.persistent

    def isActive(self):
        return self.active

    def XMLDesc(self, _flags=0):
        return "<domain/>"

    def connect(self):
        dom = self

        class Conn:
            def defineXML(self, xml):
                dom.calls.append(("define", xml))
                dom.persistent = True
        return Conn()

    def destroy(self):
        self.calls.append(("destroy",))
        self.active = False

    def create(self):
        self.calls.append(("create",))
        self.active = True

    def name(self):
        return "lpar1"


def test_restart_boots_the_copy_again_and_keeps_a_transient_one_defined():
    dom = BootDomain(persistent=True)
    assert M.restart(dom) == ["powered off", "booted"]
    assert dom.calls == [("destroy",), ("create",)]
    dom = BootDomain(persistent=False)
    assert M.restart(dom) == ["defined", "powered off", "booted"]
    assert dom.calls[0] == ("define", "<domain/>")  # before destroy drops it


def test_info_failure_is_a_hypervisor_error(frame):
    class Broken:
        def name(self):
            return "lpar9"

        def state(self):
            raise libvirt.libvirtError("domain vanished")

    with pytest.raises(HypervisorError) as exc:
        frame.info(Broken())
    assert "sys1" in exc.value.message and "lpar9" in exc.value.message


def test_info_of_running_domain_without_job_info_is_not_busy(frame, names):
    dom = frame.conn.defineXML(lab_xml(names["lab"]))
    dom.create()
    info = frame.info(dom)  # the test driver refuses jobInfo: not an error
    assert info.state == "running" and info.job_active is False


def test_lookup_missing_domain_is_none(frame):
    assert frame.lookup("lpmlab-no-such-domain") is None


def test_lookup_finds_a_domain(frame, names):
    frame.conn.defineXML(plain_xml(names["plain"]))
    assert frame.lookup(names["plain"]).name() == names["plain"]


def test_connection_reopens_after_close(frame):
    first = frame.conn
    frame.close()
    assert frame.conn is not first
    assert frame.conn.isAlive()


def test_host_uuid_without_uuid_in_capabilities_is_a_hypervisor_error(frame):
    with pytest.raises(HypervisorError):
        frame.host_uuid()


def test_unreachable_daemon_gives_a_fix_within_the_timeout():
    fc = C.FrameConnection("sys9", "qemu+unix:///system?socket=/nonexistent/sock",
                           connect_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(HypervisorError) as exc:
        _ = fc.conn
    elapsed = time.monotonic() - t0
    assert elapsed < 3
    err = exc.value
    assert "sys9" in err.message and "/nonexistent/sock" in err.message
    assert "lpmlab lab up" in err.fix
    assert err.exit_code == HypervisorError.exit_code


# -- migration --------------------------------------------------------------------------------

def test_default_flags_are_live_p2p_persistent_undefine_source():
    flags = M.MigrationRequest("qemu+tcp://198.18.0.12/system", "tcp://198.18.0.21:49152",
                               "198.18.0.12").flags
    for f in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_PEER2PEER,
              libvirt.VIR_MIGRATE_PERSIST_DEST, libvirt.VIR_MIGRATE_UNDEFINE_SOURCE):
        assert flags & f
    for f in (libvirt.VIR_MIGRATE_OFFLINE, libvirt.VIR_MIGRATE_POSTCOPY,
              libvirt.VIR_MIGRATE_NON_SHARED_DISK, libvirt.VIR_MIGRATE_UNSAFE,
              libvirt.VIR_MIGRATE_TUNNELLED):
        assert not flags & f


def test_params_carry_the_msp_uri_and_listen_address_only_by_default():
    req = M.MigrationRequest("qemu+tcp://198.18.0.12/system", "tcp://198.18.0.21:49152",
                             "198.18.0.12")
    assert req.params() == {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://198.18.0.21:49152",
                            libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: "198.18.0.12"}


def test_params_with_dest_xml_and_bandwidth():
    req = M.MigrationRequest("qemu+tcp://198.18.0.12/system", "tcp://198.18.0.21:49152",
                             "198.18.0.12", dest_xml="<domain/>", bandwidth_mib=100)
    p = req.params()
    assert p[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == "<domain/>"
    assert p[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] == "<domain/>"
    assert p[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 100


class FakeDomain:
    """Stands in for virDomain where the test driver has no migration or job calls."""

    def __init__(self, stats=(), fail=None):
        self.stats = list(stats)
        self.fail = fail
        self.calls = []
        self.lock = threading.Lock()

    def name(self):
        return "lpar1"

    def migrateToURI3(self, uri, params, flags):
        self.calls.append(("migrateToURI3", uri, params, flags))
        if self.fail:
            raise lv_error(self.fail)

    def jobStats(self, flags=0):
        with self.lock:
            self.calls.append(("jobStats", flags))
            item = self.stats.pop(0) if self.stats else {"type": libvirt.VIR_DOMAIN_JOB_NONE}
        if isinstance(item, Exception):
            raise item
        return dict(item)

    def abortJob(self):
        self.calls.append(("abortJob",))
        if self.fail:
            raise lv_error(self.fail)

    def remaining(self):
        with self.lock:
            return len(self.stats)


def test_migrate_calls_libvirt_with_the_request():
    dom = FakeDomain()
    req = M.MigrationRequest("qemu+tcp://198.18.0.12/system", "tcp://198.18.0.21:49152",
                             "198.18.0.12", dest_xml="<domain/>")
    M.migrate(dom, req)
    assert dom.calls == [("migrateToURI3", "qemu+tcp://198.18.0.12/system", req.params(),
                          req.flags)]


def test_migrate_failure_is_a_hypervisor_error():
    dom = FakeDomain(fail="operation failed: migration out job: unexpectedly failed")
    req = M.MigrationRequest("qemu+tcp://198.18.0.12/system", "tcp://198.18.0.21:49152",
                             "198.18.0.12")
    with pytest.raises(HypervisorError) as exc:
        M.migrate(dom, req)
    assert "lpar1" in exc.value.message
    assert "unexpectedly failed" in exc.value.message
    assert isinstance(exc.value.__cause__, libvirt.libvirtError)


def test_abort_failure_is_a_hypervisor_error():
    with pytest.raises(HypervisorError) as exc:
        M.abort(FakeDomain(fail="no job is active on the domain"))
    assert "lpar1" in exc.value.message
    dom = FakeDomain()
    M.abort(dom)
    assert dom.calls == [("abortJob",)]


def job(remaining, it):
    return {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_remaining": remaining,
            "memory_iteration": it}


def test_completed_stats_keeps_them_for_other_readers():
    done = {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "downtime": 80}
    dom = FakeDomain([done])
    assert M.completed_stats(dom) == done
    (_, flags), = dom.calls
    assert flags & libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
    assert flags & libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
    assert M.completed_stats(FakeDomain([lv_error("gone")])) == {}
