"""The ``twistd msgsvc`` plugin; the application is imported only when it is run."""

from twisted.application.service import ServiceMaker

msgsvc = ServiceMaker(
    "msgsvc",
    "msgsvc.tap",
    "Message queue, chat, forum, microblog and diagnostics over TCP and UDP on one port.",
    "msgsvc",
)
