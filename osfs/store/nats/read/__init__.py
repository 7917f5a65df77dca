"""The read path of the NATS store: chunk indexes, cache, fetches, whole gets, the digest
check of ranged reads and the disk tier."""
