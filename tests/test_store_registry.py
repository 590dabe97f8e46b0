"""The kinds of store, opened by the scheme of their --store URL."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.store import STORE_URLS, StoreError, Stores, check_store_url, open_stores, register
from msgsvc.store.memory import MemoryQueueStore
from msgsvc.store.registry import store_urls, unregister

OPENED: list[tuple[str, IReactorTime]] = []


def open_fake(url: str, clock: IReactorTime) -> Stores:
    """An opener registered by name: it records its call and opens memory stores."""
    OPENED.append((url, clock))
    return open_stores("memory", clock)


class RegistryTests(SynchronousTestCase):
    """open_stores and check_store_url go by the registered schemes."""

    def setUp(self) -> None:
        self.clock = Clock()
        OPENED.clear()

    def register(self, scheme: str, opener: object, usage: str, takes_argument: bool = True) -> None:
        register(scheme, opener, usage, takes_argument)
        self.addCleanup(unregister, scheme)

    def test_built_in_kinds(self) -> None:
        """memory, sqlite:PATH and redis://HOST:PORT/DB are registered, in that order, and say so in the help text."""
        self.assertEqual(STORE_URLS, "memory, sqlite:PATH, redis://HOST:PORT/DB")
        stores = open_stores("memory", self.clock)
        self.addCleanup(stores.close)
        self.assertIsInstance(stores.queues, MemoryQueueStore)

    def test_unsupported_urls_keep_their_text(self) -> None:
        """A URL of no registered kind, or of the wrong form, is refused with the same one-line text."""
        for url in ["", "memory:", "memory:x", "MEMORY", "sqlite", "sqlite:", "redis", "redis:", "x:y"]:
            for call in (check_store_url, lambda url: open_stores(url, self.clock)):
                error = self.assertRaises(StoreError, call, url)
                self.assertEqual(str(error), f"unsupported store {url!r}; use one of: {STORE_URLS}")

    def test_a_new_kind_is_one_registration(self) -> None:
        """A registered opener gets the whole URL and the clock; help and error texts list its form."""
        self.register("fake", open_fake, "fake://HOST")
        check_store_url("fake://somewhere")
        stores = open_stores("fake://somewhere", self.clock)
        self.addCleanup(stores.close)
        self.assertEqual(OPENED, [("fake://somewhere", self.clock)])
        self.assertEqual(store_urls(), "memory, sqlite:PATH, redis://HOST:PORT/DB, fake://HOST")
        self.assertRaises(StoreError, check_store_url, "fake")

    def test_opener_by_name_is_imported_when_opened(self) -> None:
        """An opener given as "module:function" is looked up only when a store of its kind is opened."""
        self.register("named", "tests.test_store_registry:open_fake", "named", takes_argument=False)
        check_store_url("named")
        self.assertEqual(OPENED, [])
        stores = open_stores("named", self.clock)
        self.addCleanup(stores.close)
        self.assertEqual(OPENED, [("named", self.clock)])

    def test_unusable_store_reason_passes_through(self) -> None:
        """An opener's StoreError reaches the caller as it was raised."""

        def broken(url: str, clock: IReactorTime) -> Stores:
            raise StoreError("cannot reach fake at nowhere")

        self.register("broken", broken, "broken:ADDRESS")
        error = self.assertRaises(StoreError, open_stores, "broken:nowhere", self.clock)
        self.assertEqual(str(error), "cannot reach fake at nowhere")

    def test_check_of_a_kind(self) -> None:
        """A kind's check (a function or its "module:function" name) runs on its URLs, not on others'."""
        checked: list[str] = []

        def check(url: str) -> None:
            checked.append(url)
            if url.endswith("!"):
                raise StoreError("malformed checked URL")

        register("checked", open_fake, "checked:X", check=check)
        self.addCleanup(unregister, "checked")
        check_store_url("checked:fine")
        check_store_url("memory")
        self.assertEqual(str(self.assertRaises(StoreError, check_store_url, "checked:bad!")), "malformed checked URL")
        self.assertEqual(checked, ["checked:fine", "checked:bad!"])
