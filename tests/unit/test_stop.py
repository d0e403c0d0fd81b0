"""migrlpar -o s when libvirt will not abort: the user is told whether anything is left to stop
(fake domain: libvirt's test driver has no migration jobs)."""

from __future__ import annotations

from types import SimpleNamespace

import libvirt
import pytest

from lpmlab.errors import MigrationError
from lpmlab.hmc import migration as M


class AbortRefusedDom:
    def __init__(self, job: int | None) -> None:
        self.job = job  # None: jobInfo fails too (the frame's daemon is gone)

    def name(self) -> str:
        return "lpar1"

    def abortJob(self) -> None:  # noqa: N802 - libvirt's name
        raise libvirt.libvirtError("cannot acquire state change lock")

    def jobInfo(self) -> list[int]:  # noqa: N802
        if self.job is None:
            raise libvirt.libvirtError("End of file while reading data")
        return [self.job, 0, 0]

    def state(self) -> list[int]:
        return [libvirt.VIR_DOMAIN_RUNNING, 0]


class Store:
    def __init__(self) -> None:
        self.states: list[str] = []

    def set_state(self, _id: str, state: str) -> None:
        self.states.append(state)


def hmc_with(dom: AbortRefusedDom) -> SimpleNamespace:
    rec = SimpleNamespace(id="20261207-lpar1-1", source_sys="sys1", dest_sys="sys2",
                          state="Migration In Progress", requested_by="hscroot")
    return SimpleNamespace(require_frame=lambda f: None, active_migration=lambda p: rec,
                           conn=lambda f: SimpleNamespace(lookup=lambda p: dom), store=Store())


@pytest.fixture(autouse=True)
def no_artifacts(monkeypatch, tmp_path):
    monkeypatch.setenv("LPMLAB_HOME", str(tmp_path))


@pytest.mark.parametrize("job, code", [
    (libvirt.VIR_DOMAIN_JOB_NONE, "HSCLL409"),       # it ended since the read: nothing to stop
    (libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "HSCLL457"),  # it goes on: was also called HSCLL409
    (None, "HSCLL457"),                              # nobody can tell
])
def test_a_refused_abort_says_whether_the_migration_goes_on(job, code):
    hmc = hmc_with(AbortRefusedDom(job))
    with pytest.raises(MigrationError) as err:
        M.stop(hmc, "lpar1", "sys1")
    assert err.value.code == code
    if code == "HSCLL457":
        assert "state change lock" in str(err.value) and "lslparmigr" in (err.value.fix or "")
    # the record is back to what it was: the stop did not happen
    assert hmc.store.states == ["Migration Stopping", "Migration In Progress"]
