"""Bringing a kept copy back to running when libvirt starts it first (fake domain: the test
driver cannot reproduce a migration job's clean-up)."""

from __future__ import annotations

import libvirt
import pytest

from lpmlab.adapter import migration as mig
from lpmlab.errors import HypervisorError


class Refused(libvirt.libvirtError):
    def __init__(self, code: int) -> None:
        super().__init__("Requested operation is not valid: domain is already running")
        self.code = code

    def get_error_code(self) -> int:
        return self.code


class RacedDom:
    """Shut off when looked at; running by the time create() is called."""

    def __init__(self, code: int = libvirt.VIR_ERR_OPERATION_INVALID) -> None:
        self.code, self.looks = code, 0

    def name(self) -> str:
        return "lpar1"

    def isPersistent(self) -> bool:  # noqa: N802 - libvirt's name
        return True

    def isActive(self) -> bool:  # noqa: N802
        self.looks += 1
        return self.looks > 1 and self.code == libvirt.VIR_ERR_OPERATION_INVALID

    def state(self) -> list[int]:
        return [libvirt.VIR_DOMAIN_SHUTOFF, 0]

    def create(self) -> None:
        raise Refused(self.code)


def test_a_copy_started_meanwhile_is_found_running_not_an_error():
    # 'migrlpar -o r' failed with "domain is already running" when libvirt resumed the
    # source copy between the look and the start
    assert mig.make_running_and_persistent(RacedDom()) == ["found running"]


def test_any_other_refusal_still_fails():
    with pytest.raises(HypervisorError, match="cannot bring lpar1 back"):
        mig.make_running_and_persistent(RacedDom(libvirt.VIR_ERR_INTERNAL_ERROR))
