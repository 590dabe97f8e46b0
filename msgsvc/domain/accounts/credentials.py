# -*- test-case-name: tests.test_accounts_credentials -*-
"""``--credentials FILE``: forum accounts to import at start-up, one ``username password`` a line."""

from __future__ import annotations

from msgsvc.domain.accounts.passwords import password
from msgsvc.domain.text import account_name


def read_credentials(path: str) -> list[tuple[str, str]]:
    """The ``username password`` pairs of a credentials file (blank lines skipped).

    Raises ValueError naming the file and line for anything else; the message
    never contains a password.
    """
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as error:
        raise ValueError(f"cannot read credentials file {path}: {error.strerror}") from None
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        where = f"{path} line {number}"
        try:
            fields = raw.decode("ascii").split()
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not ASCII") from None
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 'username password'")
        name, secret = fields
        try:
            account_name(name)
            password(secret)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if name.casefold() in seen:
            raise ValueError(f"{where}: the user {name} appears twice")
        seen.add(name.casefold())
        pairs.append((name, secret))
    return pairs
