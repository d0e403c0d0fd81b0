"""The partition OS channel (RMC): SSH from the controller into partitions."""
