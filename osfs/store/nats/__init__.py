"""The NATS JetStream implementation of the object store: the only place asyncio and nats-py
are imported (see ``store.py`` for the trio face, ``loop.py`` for the thread it runs on)."""
