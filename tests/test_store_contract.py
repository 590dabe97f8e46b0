"""The store contract (tests/store_contract.py) on each kind of store."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from msgsvc.store import open_stores
from msgsvc.store.redis_queues import LEASE
from msgsvc.store.registry import Stores
from tests.helpers import temp_dir
from tests.redis_server import RedisServer, start_redis
from tests.store_contract import StoreContract


class MemoryStoreContract(StoreContract, TestCase):
    """The contract on --store memory."""

    async def open(self) -> Stores:
        stores = open_stores("memory", reactor)
        self.addCleanup(stores.close)
        return stores


class SqliteStoreContract(StoreContract, TestCase):
    """The contract on --store sqlite:PATH."""

    async def open(self) -> Stores:
        stores = open_stores("sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite"), reactor)
        self.addCleanup(stores.close)
        return stores


class RedisStoreContract(StoreContract, TestCase):
    """The contract on --store redis://HOST:PORT/DB, with two instances on one Redis as two nodes."""

    shared = True
    lease = LEASE
    server: RedisServer | None = None

    async def open(self) -> Stores:
        if self.server is None:
            self.server = await start_redis(self)
        stores = open_stores(self.server.url(), reactor)
        self.addCleanup(stores.close)
        return stores
