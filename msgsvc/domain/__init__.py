"""The broker, its sessions and the five systems: no wire format, no transport."""
