"""The ``uom`` objects of the REST API (ManagedSystem, LogicalPartition, VirtualIOServer) and
their ``quick`` JSON, drawn from a survey (:mod:`lpmlab.rest.model`).

Element names and value spellings are the HMC's (what pypowervm's wrappers and IBM's Ansible
collection read); the values are the lab's, as ``lssyscfg``, ``lshwres`` and ``lslparmigr``
show them. The lab's processors are shared only (one unit per virtual processor, uncapped,
pool 0).
"""

from __future__ import annotations

from typing import Any

from lpmlab.rest.atom import UOM, Entry, ObjectBuilder
from lpmlab.rest.model import PartitionView, SystemView

UOM_TYPE = "application/vnd.ibm.powervm.uom+xml; type={}"
API = "/rest/api/uom"

# lssyscfg's partition states -> the REST API's PartitionState values
PARTITION_STATES = {
    "Running": "running", "Not Activated": "not activated", "Starting": "starting",
    "Shutting Down": "shutting down", "Error": "error", "Open Firmware": "open firmware",
    "Migrating - Running": "migrating running",
    "Migrating - Not Activated": "migrating not active",
}
SYSTEM_STATES = {"Operating": "operating", "No Connection": "no connection"}


def state_of(record: dict[str, Any]) -> str:
    return PARTITION_STATES.get(record["state"], "Unknown")


def migration_state(view: PartitionView) -> str:
    """lslparmigr's migration_state the REST way: ``Migration In Progress`` ->
    ``Migration_In_Progress``."""
    return view.migration_state.replace(" ", "_")


def system_href(base: str, s: SystemView) -> str:
    return f"{base}{API}/ManagedSystem/{s.uuid}"


def partition_href(base: str, p: PartitionView) -> str:
    return f"{base}{API}/{p.kind}/{p.uuid}"


# -- ManagedSystem -----------------------------------------------------------------------------
def managed_system(s: SystemView, vios: list[PartitionView], base: str) -> Entry:
    r, f = s.record, s.facts
    ob = ObjectBuilder(UOM, "ManagedSystem", s.uuid)
    type_model = str(r["type_model"])
    machine_type, _, model = type_model.partition("-")
    caps = ob.group("AssociatedSystemCapabilities")
    ob.fields({"ActiveLogicalPartitionMobilityCapable": bool(r["active_lpar_mobility_capable"]),
               "InactiveLogicalPartitionMobilityCapable":
                   bool(r["inactive_lpar_mobility_capable"]),
               "IBMiLogicalPartitionMobilityCapable": False,
               "DynamicLogicalPartitionCapable": True, "LinuxCapable": True,
               "AIXCapable": True}, caps)
    mem = ob.group("AssociatedSystemMemoryConfiguration")
    ob.fields({"ConfigurableSystemMemory": r["installed_sys_mem"],
               "CurrentAvailableSystemMemory": r.get("curr_avail_sys_mem",
                                                     f.memory_free_mb if f else 0),
               "InstalledSystemMemory": r["installed_sys_mem"],
               "MemoryRegionSize": r["mem_region_size"], "MemoryUsedByHypervisor": 0}, mem)
    proc = ob.group("AssociatedSystemProcessorConfiguration")
    units = float(r["curr_sys_proc_units"])
    ob.fields({"ConfigurableSystemProcessorUnits": units,
               "CurrentAvailableSystemProcessorUnits":
                   float(f.processors_free) if f else 0.0,
               "InstalledSystemProcessorUnits": units,
               "MinimumProcessorUnitsPerVirtualProcessor": 1.0,
               "CurrentMaximumAllowedProcessorsPerPartition": int(units),
               "MaximumAllowedVirtualProcessorsPerPartition": int(units)}, proc)
    for mode in r["lpar_proc_compat_modes"]:
        ob.add("SupportedPartitionProcessorCompatibilityModes", mode, proc)
    if vios:
        links = ob.group("AssociatedVirtualIOServers")
        for v in vios:
            ob.link("link", f"{system_href(base, s)}/VirtualIOServer/{v.uuid}", links)
    ob.add("DetailedState", "None")  # the HMC's literal text (Ansible's modules test it)
    mtms = ob.group("MachineTypeModelAndSerialNumber")
    ob.fields({"MachineType": machine_type, "Model": model,
               "SerialNumber": r["serial_num"]}, mtms)
    ob.fields({"ManufacturingDefaultConfigurationEnabled": False,
               "MaximumPartitions": r["max_lpars"], "PrimaryIPAddress": r["ipaddr"],
               "State": SYSTEM_STATES.get(r["state"], r["state"].lower()),
               "SystemName": s.name})
    mig = ob.group("SystemMigrationInformation")
    ob.fields({"MaximumActiveMigrations": r["num_active_migrations_supported"],
               "MaximumInactiveMigrations": f.max_inactive_migrations if f
               else r["num_active_migrations_supported"],
               "NumberOfActiveMigrationsInProgress": s.migrations["active"],
               "NumberOfInactiveMigrationsInProgress": s.migrations["inactive"],
               "MaximumFirmwareActiveMigrations": r["num_active_migrations_supported"],
               "LogicalPartitionAffinityCheckCapable": False}, mig)
    ob.fields({"SystemType": "fsp", "ReferenceCode": "", "IsPowerVMManagementMaster": True})
    return Entry(s.uuid, "ManagedSystem", system_href(base, s),
                 UOM_TYPE.format("ManagedSystem"), ob.xml())


def quick_system(s: SystemView) -> dict[str, Any]:
    """``GET ManagedSystem/{uuid}/quick``: the HMC's JSON summary of the system."""
    r, f = s.record, s.facts
    return {
        "SystemName": s.name, "UUID": s.uuid,
        "State": SYSTEM_STATES.get(r["state"], r["state"].lower()), "StateDetail": "None",
        "IPAddress": r["ipaddr"], "MTMS": f"{r['type_model']}*{r['serial_num']}",
        "SystemType": "fsp", "SystemFirmware": "lpmlab",
        "InstalledSystemMemory": r["installed_sys_mem"],
        "ConfigurableSystemMemory": r["installed_sys_mem"],
        "CurrentAvailableSystemMemory": r.get("curr_avail_sys_mem"),
        "InstalledSystemProcessorUnits": float(r["curr_sys_proc_units"]),
        "ConfigurableSystemProcessorUnits": float(r["curr_sys_proc_units"]),
        "CurrentAvailableSystemProcessorUnits": float(f.processors_free) if f else None,
        "MaximumPartitions": r["max_lpars"], "ReferenceCode": "",
        "ActiveLogicalPartitionMobilityCapable": bool(r["active_lpar_mobility_capable"]),
        "InactiveLogicalPartitionMobilityCapable": bool(r["inactive_lpar_mobility_capable"]),
    }


# -- LogicalPartition and VirtualIOServer ------------------------------------------------------
def partition(p: PartitionView, base: str) -> Entry:
    """A partition's entry: LogicalPartition, or VirtualIOServer for a VIOS."""
    tag = p.kind
    r, f = p.record, p.facts
    running = p.running
    ob = ObjectBuilder(UOM, tag, p.uuid)
    ob.fields({"AllowPerformanceDataCollection": False,
               "AssociatedPartitionProfile": None})
    ob.link("AssociatedManagedSystem", system_href(base, p.system))
    ob.fields({"AvailabilityPriority": 127, "CurrentProcessorCompatibilityMode":
               r["curr_lpar_proc_compat_mode"],
               "CurrentProfileSync": "Off", "IsBootable": True,
               "IsConnectionMonitoringEnabled": True, "IsOperationInProgress": False,
               "IsRedundantErrorPathReportingEnabled": False,
               "IsTimeReferencePartition": bool(r.get("time_ref")),
               "IsVirtualServiceAttentionLEDOn": False,
               "IsVirtualTrustedPlatformModuleEnabled": False, "KeylockPosition": "normal",
               "LogicalSerialNumber": None, "OperatingSystemVersion": r.get("os_version")
               or "Unknown"})
    caps = ob.group("PartitionCapabilities")
    ob.fields({"DynamicLogicalPartitionIOCapable": running,
               "DynamicLogicalPartitionMemoryCapable": running,
               "DynamicLogicalPartitionProcessorCapable": running}, caps)
    ob.fields({"PartitionID": r["lpar_id"]})
    mem = ob.group("PartitionMemoryConfiguration")
    current_mb = f.memory_mb if f is not None and running else 0
    ob.fields({"DesiredMemory": f.desired_memory_mb if f else 0,
               "MaximumMemory": f.max_memory_mb if f else 0,
               "MinimumMemory": f.min_memory_mb if f else 0,
               "CurrentMemory": current_mb,
               "CurrentMaximumMemory": f.max_memory_mb if f and running else 0,
               "CurrentMinimumMemory": f.min_memory_mb if f and running else 0,
               "RuntimeMemory": current_mb, "SharedMemoryEnabled": False,
               "MemoryExpansionEnabled": False}, mem)
    ob.fields({"PartitionName": p.name})
    _processors(ob, p)
    ob.fields({"PartitionState": state_of(r),
               "PartitionType": "Virtual IO Server" if p.is_vios else "AIX/Linux",
               "PartitionUUID": p.uuid,
               "PendingProcessorCompatibilityMode": r["curr_lpar_proc_compat_mode"],
               "ResourceMonitoringControlState": r.get("rmc_state", "unknown"),
               "ResourceMonitoringIPAddress": r.get("rmc_ipaddr") or None,
               "ReferenceCode": p.refcode or None,
               "IsManagementPartition": False, "IsServicePartition": False,
               "MigrationState": migration_state(p),
               "CurrentProfile": r.get("curr_profile") or None})
    if p.is_vios:
        ob.fields({"MoverServicePartition": bool(r.get("msp")),
                   "VirtualIOServerLicenseAccepted": True})
    else:
        ob.fields({"IsRestrictedIOPartition": False,
                   "SimplifiedRemoteRestartCapable": False,
                   "MigrationDisabled": bool(r.get("migration_disabled"))})
    return Entry(p.uuid, tag, partition_href(base, p), UOM_TYPE.format(tag), ob.xml())


def _processors(ob: ObjectBuilder, p: PartitionView) -> None:
    f, procs = p.facts, p.current_procs
    cfg = ob.group("PartitionProcessorConfiguration")
    ob.fields({"HasDedicatedProcessors": False, "SharingMode": "uncapped"}, cfg)
    shared = ob.group("SharedProcessorConfiguration", cfg)
    ob.fields({"DesiredProcessingUnits": float(f.desired_procs) if f else 0.0,
               "DesiredVirtualProcessors": f.desired_procs if f else 0,
               "MaximumProcessingUnits": float(f.max_procs) if f else 0.0,
               "MaximumVirtualProcessors": f.max_procs if f else 0,
               "MinimumProcessingUnits": float(f.min_procs) if f else 0.0,
               "MinimumVirtualProcessors": f.min_procs if f else 0,
               "SharedProcessorPoolID": 0, "UncappedWeight": 128}, shared)
    current = ob.group("CurrentSharedProcessorConfiguration", cfg)
    ob.fields({"AllocatedVirtualProcessors": procs,
               "CurrentMaximumProcessingUnits": float(f.max_procs) if f and procs else 0.0,
               "CurrentMinimumProcessingUnits": float(min(procs, f.min_procs)) if f else 0.0,
               "CurrentProcessingUnits": float(procs),
               "CurrentMaximumVirtualProcessors": f.max_procs if f and procs else 0,
               "CurrentMinimumVirtualProcessors": min(procs, f.min_procs) if f else 0,
               "CurrentSharedProcessorPoolID": 0, "CurrentUncappedWeight": 128,
               "RuntimeProcessingUnits": float(procs), "RuntimeUncappedWeight": 128}, current)
    ob.fields({"CurrentHasDedicatedProcessors": False, "CurrentSharingMode": "uncapped",
               "RuntimeHasDedicatedProcessors": False}, cfg)


def quick_partition(p: PartitionView) -> dict[str, Any]:
    """``.../LogicalPartition/quick/All`` (and VirtualIOServer's): the HMC's JSON summary."""
    r, f, procs = p.record, p.facts, p.current_procs
    return {
        "PartitionName": p.name, "UUID": p.uuid, "PartitionID": r["lpar_id"],
        "PartitionState": state_of(r),
        "PartitionType": "Virtual IO Server" if p.is_vios else "AIX/Linux",
        "RMCState": r.get("rmc_state", "unknown"),
        "ResourceMonitoringIPAddress": r.get("rmc_ipaddr") or None,
        "OperatingSystemVersion": r.get("os_version") or "Unknown",
        "CurrentProcessorCompatibilityMode": r["curr_lpar_proc_compat_mode"],
        "MigrationState": migration_state(p),
        "CurrentMemory": f.memory_mb if f is not None and p.running else 0,
        "CurrentProcessors": procs, "CurrentProcessingUnits": float(procs),
        "HasDedicatedProcessors": False, "SharingMode": "uncapped",
        "ReferenceCode": p.refcode or None, "IsVIOS": p.is_vios,
        "MoverServicePartition": bool(r.get("msp")) if p.is_vios else None,
        "AssociatedManagedSystem": p.system.uuid,
    }
