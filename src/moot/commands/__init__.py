"""The `moot` command's groups (moot.cli wires them): cluster administration over the
REST API, certificates, local users and keys."""
