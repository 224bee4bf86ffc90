"""Infrastructure shared by the EMS and the room server: settings, TLS, logs, tokens, metrics."""
