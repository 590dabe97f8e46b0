"""The front ends: they frame bytes into requests and replies, and listen."""
