"""Client addresses shared by the UDP front-end tests."""

ALICE = ("127.0.0.1", 50001)
BOB = ("127.0.0.1", 50002)
