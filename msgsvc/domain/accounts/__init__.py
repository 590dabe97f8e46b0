"""Forum accounts: password hashes, the twisted.cred checker and realm, throttling, the credentials file."""
