"""Shared test kit: server harnesses (slapd, ...), throw-away certificate authorities, ports and network faults."""
