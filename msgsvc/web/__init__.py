"""The web interface (``--web``): status page, Prometheus metrics, the WebSocket front end and the chat page."""
