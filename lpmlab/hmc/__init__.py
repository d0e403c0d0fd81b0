"""The HMC core: managed systems, partitions, migrations and their records."""
