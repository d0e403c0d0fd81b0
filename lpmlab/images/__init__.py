"""Partition boot images: a Debian ppc64el kernel plus a busybox/dropbear initramfs.

``ensure_partition_image()`` returns the cached image for the current recipe (images/), building
it on first use; ``write_overlay`` and ``combine`` add a lab's keys and files on top of it.
"""

from lpmlab.images.cache import PartitionImage, ensure_partition_image
from lpmlab.images.overlay import combine, dropbear_ed25519_key, write_overlay
from lpmlab.images.recipe import recipe_digest

__all__ = [
    "PartitionImage",
    "combine",
    "dropbear_ed25519_key",
    "ensure_partition_image",
    "recipe_digest",
    "write_overlay",
]
