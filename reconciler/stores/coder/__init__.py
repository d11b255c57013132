"""The Coder store: a live Coder deployment through its REST API.

store.py    CoderStore: options, reading, locking, apply
api.py      requests, retries, the deadline
mapping.py  the API's routes; records <-> Coder's JSON
writer.py   the writes of each kind and their read-back
runner.py   writes in dependency order, in parallel
"""

from reconciler.stores.coder.store import CoderStore

__all__ = ["CoderStore"]
