"""Refuse plain pytest test functions: every test is a trial TestCase (see README)."""

from twisted.trial.unittest import SynchronousTestCase


def pytest_collection_modifyitems(session, config, items):
    plain = [item.nodeid for item in items if item.cls is None or not issubclass(item.cls, SynchronousTestCase)]
    if plain:
        raise RuntimeError(f"tests must be twisted.trial TestCase methods, not plain functions: {plain[:5]}")
