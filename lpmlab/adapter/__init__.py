"""The hypervisor adapter: the only code in lpmlab that speaks libvirt."""
