"""lpmlab: IBM PowerVM Live Partition Mobility reproduced on KVM/libvirt."""

__version__ = "0.1.0"
