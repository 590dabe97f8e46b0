"""msgsvc: a queue, chat room, forum, microblog and diagnostics over one TCP+UDP port."""

__version__ = "0.1.0"
