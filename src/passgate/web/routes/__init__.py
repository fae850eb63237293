"""One router per face: auth (ceremonies, sessions), account, device links, WebSockets, pages."""
