"""osfs: the NATS JetStream Object Store as a filesystem."""

__version__ = "0.1.0"
