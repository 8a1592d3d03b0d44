"""The hub's routers, one per area (see :func:`kiosk.hub.app.create_app`)."""
