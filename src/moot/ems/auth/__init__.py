"""Signing people in: local passwords (argon2id) and LDAP directories."""
